"""A witness: the counterpart country cosigns a log's checkpoint only if it extends the last one.

Follows C2SP tlog-witness ``add-checkpoint`` (docs/audit.md, "Witness protocol"): the log
sends its new signed checkpoint, the size of the checkpoint it believes the witness last
cosigned, and a consistency proof from that size. The witness

1. parses the request and refuses logs it does not follow (404 ``unknown_log``);
2. verifies the log's signature through the trust store (403 ``bad_signature``);
3. compares the old size with its own state (409 ``conflict``, telling its size);
4. refuses a smaller tree or an older time (400 ``rollback``), or a time more than
   :data:`MAX_CLOCK_SKEW_SECONDS` ahead of its clock (400 ``malformed``);
5. verifies the RFC 9162 consistency proof from its stored root; equal sizes need equal
   roots (422 ``inconsistent``: a fork or a rewrite);
6. persists the new checkpoint (fsync, atomic rename) *before* cosigning;
7. returns a ``cosignature/v1`` line timestamped now.

Example::

    witness = Witness(state_dir, signer=AgencyNoteSigner(usa_atf, at=now), trust=trust,
                      logs={"MEX-FGR"})
    line = witness.add_checkpoint(signed.encode(), old_size=0, proof=[])
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from exchange.audit.checkpoint import Checkpoint, SignedCheckpoint, cosign
from exchange.audit.errors import (
    AuditFormatError,
    AuditLogCorruptError,
    RefusalReason,
    WitnessRefusedError,
)
from exchange.audit.note import NoteSignature, NoteSigner, parse_key_name
from exchange.audit.storage import atomic_write, read_note_file
from exchange.audit.tree import HASH_SIZE, root_of, verify_consistency
from exchange.crypto.keys import TrustResolver

__all__ = ["MAX_CLOCK_SKEW_SECONDS", "Witness"]

#: A checkpoint may be at most this far ahead of the witness's clock: a checkpoint from the
#: future would make every honest later checkpoint look like a rollback.
MAX_CLOCK_SKEW_SECONDS: Final = 600


class Witness:
    """A witness for the logs of some agencies, with its state persisted in ``state_dir``.

    Args:
        state_dir: where the last cosigned checkpoint of each log is kept (created).
        signer: the witness agency's note signer (classic Ed25519 key).
        trust: verifies log signatures.
        logs: agency ids whose logs this witness follows (never its own).

    Raises:
        ValueError: ``logs`` is empty or holds the witness's own agency, or ``signer`` is not
            an agency note key.
    """

    def __init__(
        self, state_dir: Path, *, signer: NoteSigner, trust: TrustResolver, logs: Iterable[str]
    ) -> None:
        parsed = parse_key_name(signer.name)
        if parsed is None:
            raise ValueError(f"got signer {signer.name!r}, expected an agency note key")
        self._agency = parsed[0]
        self._logs = frozenset(logs)
        if not self._logs or self._agency in self._logs:
            raise ValueError("a witness follows at least one log, and never its own")
        state_dir.mkdir(parents=True, exist_ok=True)
        self._dir = state_dir
        self._signer = signer
        self._trust = trust
        self._lock = threading.Lock()

    @property
    def agency_id(self) -> str:
        return self._agency

    def follows(self, log_agency: str) -> bool:
        """Whether this witness cosigns ``log_agency``'s log."""
        return log_agency in self._logs

    def state(self, log_agency: str) -> Checkpoint | None:
        """The checkpoint of ``log_agency`` this witness last cosigned, if any.

        Raises:
            AuditLogCorruptError: the state file is damaged.
        """
        path = self._dir / f"{log_agency}.note"
        if not path.exists():
            return None
        try:
            return SignedCheckpoint.parse(read_note_file(path)).checkpoint
        except AuditFormatError as exc:
            raise AuditLogCorruptError(f"witness state {path}: {exc}") from exc

    def add_checkpoint(
        self,
        checkpoint: bytes,
        *,
        old_size: int,
        proof: Sequence[bytes],
        now: datetime | None = None,
    ) -> NoteSignature:
        """Verify a checkpoint against this witness's view and cosign it.

        Args:
            checkpoint: the signed checkpoint note (log signature at least).
            old_size: the size the log believes this witness last cosigned.
            proof: RFC 9162 consistency proof from ``old_size`` to the new size.
            now: the cosignature time; defaults to the current UTC time.

        Returns:
            The ``cosignature/v1`` signature line to add to the checkpoint.

        Raises:
            WitnessRefusedError: for every refusal; ``reason`` says which, ``known_size``
                carries this witness's size on ``conflict``.
            AuditStorageError: the state could not be persisted (nothing was cosigned).
        """
        try:
            signed = SignedCheckpoint.parse(checkpoint)
        except AuditFormatError as exc:
            raise WitnessRefusedError(RefusalReason.MALFORMED, str(exc)) from None
        cp = signed.checkpoint
        if cp.agency_id not in self._logs:
            raise WitnessRefusedError(RefusalReason.UNKNOWN_LOG, cp.origin)
        if not signed.verify_log_signature(self._trust):
            raise WitnessRefusedError(RefusalReason.BAD_SIGNATURE, "log signature invalid")
        when = int((now or datetime.now(UTC)).timestamp())
        if cp.time > when + MAX_CLOCK_SKEW_SECONDS:
            raise WitnessRefusedError(RefusalReason.MALFORMED, "checkpoint time is in the future")
        if len(proof) > 64 or any(len(p) != HASH_SIZE for p in proof):
            raise WitnessRefusedError(RefusalReason.MALFORMED, "proof hashes out of bounds")
        with self._lock:
            known = self.state(cp.agency_id)
            known_size = 0 if known is None else known.size
            if old_size != known_size:
                raise WitnessRefusedError(
                    RefusalReason.CONFLICT,
                    f"old size {old_size}, but the last cosigned size is {known_size}",
                    known_size=known_size,
                )
            if cp.size < known_size or (known is not None and cp.time < known.time):
                raise WitnessRefusedError(RefusalReason.ROLLBACK, "older than the last cosigned")
            known_root = root_of([]) if known is None else known.root
            if not verify_consistency(known_size, cp.size, known_root, cp.root, proof):
                raise WitnessRefusedError(
                    RefusalReason.INCONSISTENT,
                    f"size {cp.size} is not an extension of the cosigned size {known_size}",
                )
            # tlog-witness: persist before returning the cosignature.
            log_only = SignedCheckpoint(cp, signed.note)
            atomic_write(self._dir / f"{cp.agency_id}.note", log_only.encode())
        return cosign(cp, self._signer, timestamp=when)
