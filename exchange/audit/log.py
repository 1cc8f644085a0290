"""``AuditLog``: one agency's append-only, checkpointed Merkle log on disk.

Example::

    log = AuditLog.open(home / "audit" / "MEX-FGR", agency_id="MEX-FGR")
    index = log.append(entry)                         # fsync'd before it returns
    signed = log.checkpoint(AgencyNoteSigner(provider, at=now), now=now)
    proof = log.inclusion_proof(index, signed.checkpoint.size)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from exchange.audit.checkpoint import Checkpoint, SignedCheckpoint, log_origin, sign_checkpoint
from exchange.audit.entry import AuditEntry
from exchange.audit.errors import AuditFormatError, AuditLogCorruptError, AuditStorageError
from exchange.audit.note import NoteSignature, NoteSigner
from exchange.audit.storage import EntriesFile, atomic_write, read_bounded, read_note_file
from exchange.audit.tree import consistency_proof, inclusion_proof, root_of

__all__ = ["AuditLog"]

ENTRIES_FILE: Final = "entries.bin"
ORIGIN_FILE: Final = "ORIGIN"
CHECKPOINT_DIR: Final = "checkpoints"
_CHECKPOINT_NAME: Final = re.compile(r"\A[0-9]{20}\.note\Z")


class AuditLog:
    """The audit log of one agency. Thread-safe appends; use as a context manager.

    Use :meth:`open`; the constructor is internal.
    """

    def __init__(self, directory: Path, agency_id: str, entries: EntriesFile) -> None:
        self._dir = directory
        self._agency = agency_id
        self._origin = log_origin(agency_id)
        self._entries = entries

    @classmethod
    def open(cls, directory: Path, *, agency_id: str) -> AuditLog:
        """Open (or create) the log of ``agency_id`` in ``directory``, recovering a torn write.

        Args:
            directory: the log directory (created if missing).
            agency_id: the owning agency; must match the directory's ``ORIGIN``.

        Returns:
            The open log.

        Raises:
            AuditLogCorruptError: damage a crash cannot explain, a stored checkpoint beyond
                the intact entries, or another agency's log.
            AuditStorageError: the disk failed.
            ValueError: ``agency_id`` is not an agency id.
        """
        origin = log_origin(agency_id)
        try:
            (directory / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
            origin_path = directory / ORIGIN_FILE
            if not origin_path.exists():
                atomic_write(origin_path, (origin + "\n").encode())
            stored = read_bounded(origin_path, len(origin) + 1).decode("ascii")
        except (OSError, UnicodeDecodeError, AuditStorageError) as exc:
            raise AuditStorageError(f"cannot prepare {directory}: {exc}") from exc
        if stored != origin + "\n":
            raise AuditLogCorruptError(f"{directory} holds the log {stored.strip()!r}")
        covered = max((c.checkpoint.size for c in _read_checkpoints(directory)), default=0)
        return cls(directory, agency_id, EntriesFile(directory / ENTRIES_FILE, min_size=covered))

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the entries file."""
        self._entries.close()

    @property
    def agency_id(self) -> str:
        return self._agency

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def size(self) -> int:
        """Number of entries."""
        return self._entries.size

    def root(self) -> bytes:
        """The current Merkle root (RFC 9162 ``MTH``)."""
        return self._entries.root()

    def append(self, entry: AuditEntry) -> int:
        """Append one entry durably.

        Returns:
            Its leaf index.

        Raises:
            ValueError: the entry belongs to another agency's log or is too large.
            AuditStorageError: the disk failed; the entry is not in the log.
        """
        return self.append_many([entry])[0]

    def append_many(self, entries: Iterable[AuditEntry]) -> range:
        """Append entries with one write and one fsync (a producer's delivery batch).

        Raises:
            ValueError: an entry belongs to another agency's log or is too large.
            AuditStorageError: the disk failed; none of the entries is in the log.
        """
        batch = list(entries)
        for e in batch:
            if e.log_agency != self._agency:
                raise ValueError(f"got an entry for {e.log_agency}'s log, expected {self._agency}")
        return self._entries.append(batch)

    def entry_bytes(self, index: int) -> bytes:
        """The encoded entry at ``index`` (the leaf data)."""
        return self._entries.read(index)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.3.1 path of leaf ``index`` in the tree of the first ``size`` leaves.

        Raises:
            ValueError: ``index`` or ``size`` out of range.
        """
        n = self.size if size is None else size
        if not 0 < n <= self.size:
            raise ValueError(f"got size {n}, expected 1..{self.size}")
        return inclusion_proof(self._entries.leaves[:n], index)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4.1 proof that the first ``old_size`` leaves prefix ``new_size``.

        Raises:
            ValueError: sizes out of range.
        """
        n = self.size if new_size is None else new_size
        if not 0 <= n <= self.size:
            raise ValueError(f"got size {n}, expected 0..{self.size}")
        return consistency_proof(self._entries.leaves[:n], old_size)

    def root_at(self, size: int) -> bytes:
        """The root of the first ``size`` leaves."""
        return root_of(self._entries.leaves[:size])

    def checkpoint(self, signer: NoteSigner, *, now: datetime | None = None) -> SignedCheckpoint:
        """Sign and store a checkpoint of the current tree (entries are already fsync'd).

        Args:
            signer: the log agency's note signer (``AgencyNoteSigner``).
            now: the checkpoint time; defaults to the current UTC time.

        Raises:
            ValueError: ``signer`` is not a key of this log's agency.
            AuditStorageError: the disk failed.
        """
        if not signer.name.startswith(f"exchange.bus/key/{self._agency}/"):
            raise ValueError(f"got signer {signer.name}, expected a key of {self._agency}")
        size, root = self._entries.head()
        existing = self.checkpoint_at(size)
        if existing is not None:
            # One checkpoint per size: re-signing would drop its cosignatures.
            if existing.checkpoint.root != root:
                raise AuditLogCorruptError(f"stored checkpoint {size} has another root")
            return existing
        when = int((now or datetime.now(UTC)).timestamp())
        cp = Checkpoint(self._origin, size, root, when)
        signed = sign_checkpoint(cp, signer)
        self._store(signed)
        return signed

    def add_cosignature(
        self, signed: SignedCheckpoint, cosignature: NoteSignature
    ) -> SignedCheckpoint:
        """Store ``cosignature`` with the stored checkpoint of the same body.

        Raises:
            ValueError: no stored checkpoint has that body.
        """
        stored = self.checkpoint_at(signed.checkpoint.size)
        if stored is None or stored.checkpoint != signed.checkpoint:
            raise ValueError("no stored checkpoint matches the cosigned one")
        updated = stored.with_cosignature(cosignature)
        self._store(updated)
        return updated

    def checkpoint_at(self, size: int) -> SignedCheckpoint | None:
        """The stored checkpoint of tree size ``size``, if any.

        Raises:
            AuditFormatError: the stored file is not a signed checkpoint.
            AuditStorageError: it cannot be read.
        """
        path = self._dir / CHECKPOINT_DIR / f"{size:020d}.note"
        if not path.exists():
            return None
        return SignedCheckpoint.parse(read_note_file(path))

    def checkpoints(self) -> list[SignedCheckpoint]:
        """Every stored checkpoint, by size."""
        return _read_checkpoints(self._dir)

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        """The stored checkpoint of the largest tree, if any."""
        all_ = self.checkpoints()
        return all_[-1] if all_ else None

    def _store(self, signed: SignedCheckpoint) -> None:
        name = f"{signed.checkpoint.size:020d}.note"
        atomic_write(self._dir / CHECKPOINT_DIR / name, signed.encode())


def _read_checkpoints(directory: Path) -> list[SignedCheckpoint]:
    out: list[SignedCheckpoint] = []
    folder = directory / CHECKPOINT_DIR
    if not folder.is_dir():
        return out
    for path in sorted(folder.iterdir()):
        if not _CHECKPOINT_NAME.match(path.name):
            continue
        try:
            out.append(SignedCheckpoint.parse(read_note_file(path)))
        except AuditFormatError as exc:
            raise AuditLogCorruptError(f"{path}: {exc}") from exc
    return sorted(out, key=lambda c: c.checkpoint.size)
