"""Checkpoints (C2SP tlog-checkpoint), log signatures, cosignatures and the witness quorum.

A checkpoint body is (docs/audit.md, "Checkpoints")::

    exchange.bus/audit/v1/MEX-FGR          origin: one log per agency
    42                                     tree size, decimal, no leading zeros
    <base64 of the 32-byte root>           RFC 9162 MTH of the first 42 entries
    time 1764298197                        extension line: signing time, Unix seconds

signed by the log agency's key as a signed note (:mod:`exchange.audit.note`). Witnesses add
``cosignature/v1`` lines (C2SP tlog-cosignature): the signed message is
``"cosignature/v1\\ntime <t>\\n" || body`` and the line's bytes are
``key hash || u64be(t) || Ed25519 signature``, key hash over algorithm byte 0x04.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from exchange.audit.errors import AuditFormatError
from exchange.audit.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Note,
    NoteSignature,
    NoteSigner,
    key_hash,
    resolve_key,
    sign_note,
    verify_ed25519,
)
from exchange.audit.tree import HASH_SIZE, MAX_TREE_SIZE
from exchange.crypto.keys import TrustResolver
from exchange.identifiers import AGENCY_ID_PATTERN, is_agency_id

__all__ = [
    "ORIGIN_PREFIX",
    "Checkpoint",
    "SignedCheckpoint",
    "WitnessPolicy",
    "cosign",
    "log_origin",
    "sign_checkpoint",
]

ORIGIN_PREFIX: Final = "exchange.bus/audit/v1/"
_ORIGIN_RE: Final = re.compile(rf"\A{re.escape(ORIGIN_PREFIX)}({AGENCY_ID_PATTERN})\Z")
_SIZE_RE: Final = re.compile(r"\A(?:0|[1-9][0-9]{0,18})\Z")
_COSIG_HEADER: Final = "cosignature/v1\ntime {t}\n"


def log_origin(agency_id: str) -> str:
    """The origin line of ``agency_id``'s log.

    Raises:
        ValueError: not an agency id.
    """
    if not is_agency_id(agency_id):
        raise ValueError(f"got agency id {agency_id!r}, expected CCC-AGENCY")
    return ORIGIN_PREFIX + agency_id


@dataclass(frozen=True)
class Checkpoint:
    """The signed statement "the log of ``agency`` had ``size`` entries with this ``root``".

    Raises:
        ValueError: a field is outside its range.
    """

    origin: str
    size: int
    root: bytes
    time: int  # Unix seconds

    def __post_init__(self) -> None:
        if not _ORIGIN_RE.match(self.origin):
            raise ValueError(f"got origin {self.origin!r}, expected {ORIGIN_PREFIX}<agency>")
        if not 0 <= self.size <= MAX_TREE_SIZE or len(self.root) != HASH_SIZE:
            raise ValueError("checkpoint size or root out of range")
        if not 0 <= self.time < 2**40:
            raise ValueError(f"got time {self.time}, expected Unix seconds")

    @property
    def agency_id(self) -> str:
        return self.origin.removeprefix(ORIGIN_PREFIX)

    def body(self) -> str:
        """The note text (tlog-checkpoint: origin, size, root, then extension lines)."""
        root = base64.b64encode(self.root).decode()
        return f"{self.origin}\n{self.size}\n{root}\ntime {self.time}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a body; only the canonical form is accepted.

        Raises:
            AuditFormatError: not a checkpoint body of this format.
        """
        lines = text.split("\n")
        if len(lines) != 5 or lines[4] != "" or not _SIZE_RE.match(lines[1]):
            raise AuditFormatError("not an exchange checkpoint body")
        if not lines[3].startswith("time ") or not _SIZE_RE.match(lines[3][5:]):
            raise AuditFormatError("checkpoint time line is malformed")
        try:
            root = base64.b64decode(lines[2], validate=True)
            cp = cls(lines[0], int(lines[1]), root, int(lines[3][5:]))
        except (binascii.Error, ValueError) as exc:
            raise AuditFormatError(f"malformed checkpoint: {exc}") from None
        if cp.body() != text:
            raise AuditFormatError("checkpoint body is not canonical")
        return cp


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint and its note (log signature first, then cosignatures)."""

    checkpoint: Checkpoint
    note: Note

    def encode(self) -> bytes:
        return self.note.encode()

    @classmethod
    def parse(cls, data: bytes) -> SignedCheckpoint:
        """Parse a signed checkpoint note (signatures are *not* verified here).

        Raises:
            AuditFormatError: malformed note or body.
        """
        note = Note.parse(data)
        return cls(Checkpoint.parse(note.text), note)

    def with_cosignature(self, sig: NoteSignature) -> SignedCheckpoint:
        return SignedCheckpoint(self.checkpoint, self.note.with_signature(sig))

    def verify_log_signature(self, trust: TrustResolver) -> bool:
        """Whether a signature by the log agency's own key verifies over the body.

        The key must be valid and unrevoked at the checkpoint's time.
        """
        cp = self.checkpoint
        at = datetime.fromtimestamp(cp.time, UTC)
        message = cp.body().encode()
        for sig in self.note.signatures:
            resolved = resolve_key(sig.name, trust, at=at)
            if resolved is None or resolved[0] != cp.agency_id:
                continue
            expected = key_hash(sig.name, resolved[1], ALG_ED25519)
            if hmac.compare_digest(sig.key_hash, expected) and verify_ed25519(
                resolved[1], sig.signature, message
            ):
                return True
        return False

    def cosigners(self, trust: TrustResolver) -> dict[str, int]:
        """Agencies whose ``cosignature/v1`` verifies, with their cosigning times.

        The log's own agency never counts as a witness of its own log.
        """
        out: dict[str, int] = {}
        for sig in self.note.signatures:
            if len(sig.signature) != 8 + 64:
                continue
            t = int.from_bytes(sig.signature[:8], "big")
            if t >= 2**40:
                continue
            resolved = resolve_key(sig.name, trust, at=datetime.fromtimestamp(t, UTC))
            if resolved is None or resolved[0] == self.checkpoint.agency_id:
                continue
            agency, pub = resolved
            if not hmac.compare_digest(sig.key_hash, key_hash(sig.name, pub, ALG_COSIGNATURE_V1)):
                continue
            message = (_COSIG_HEADER.format(t=t) + self.checkpoint.body()).encode()
            if verify_ed25519(pub, sig.signature[8:], message):
                out[agency] = max(t, out.get(agency, 0))
        return out


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> SignedCheckpoint:
    """Sign ``checkpoint`` as a signed note with the log's key (algorithm 0x01).

    Returns:
        The signed checkpoint with exactly one (log) signature.
    """
    return SignedCheckpoint(checkpoint, sign_note(checkpoint.body(), signer))


def cosign(checkpoint: Checkpoint, signer: NoteSigner, *, timestamp: int) -> NoteSignature:
    """A C2SP ``cosignature/v1`` line over ``checkpoint`` at ``timestamp`` (Unix seconds).

    Only call this after checking consistency (:class:`~exchange.audit.witness.Witness`).
    """
    message = (_COSIG_HEADER.format(t=timestamp) + checkpoint.body()).encode()
    return NoteSignature(
        signer.name,
        key_hash(signer.name, signer.public_key, ALG_COSIGNATURE_V1),
        timestamp.to_bytes(8, "big") + signer.sign(message),
    )


@dataclass(frozen=True)
class WitnessPolicy:
    """ "A checkpoint counts only with cosignatures from ``quorum`` of ``witnesses``."

    Args:
        witnesses: agency ids whose cosignatures count (e.g. the counterpart country's).
        quorum: how many distinct witnesses must have cosigned, 1..len(witnesses).

    Raises:
        ValueError: an empty witness set or a quorum outside 1..len(witnesses) (fail closed).
    """

    witnesses: frozenset[str]
    quorum: int

    def __post_init__(self) -> None:
        if not self.witnesses or not 1 <= self.quorum <= len(self.witnesses):
            raise ValueError(
                f"got quorum {self.quorum} of {len(self.witnesses)} witnesses, "
                "expected 1 <= quorum <= number of witnesses"
            )
        if any(not is_agency_id(w) for w in self.witnesses):
            raise ValueError("witnesses must be agency ids")

    def counted(self, signed: SignedCheckpoint, trust: TrustResolver) -> frozenset[str]:
        """The policy witnesses whose cosignatures on ``signed`` verify."""
        return frozenset(signed.cosigners(trust)) & self.witnesses

    def satisfied(self, signed: SignedCheckpoint, trust: TrustResolver) -> bool:
        """Whether the log signature verifies and the quorum of cosignatures is met."""
        if not signed.verify_log_signature(trust):
            return False
        return len(self.counted(signed, trust)) >= self.quorum
