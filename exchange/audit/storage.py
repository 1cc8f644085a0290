"""The on-disk log of one agency: an append-only entries file and signed checkpoints.

Layout of a log directory (docs/audit.md, "Log directory")::

    ORIGIN                    the origin line, e.g. "exchange.bus/audit/v1/MEX-FGR\\n"
    entries.bin               FILE_MAGIC, then frames
                              u32be(len) || entry || SHA-256(u32be(len) || entry)[:8]
    checkpoints/<size>.note   signed checkpoints (20-digit size), cosignatures appended

Appends are written and ``fsync``ed before the index is returned, so an entry the caller has
been told about survives a crash. On open, the frames are scanned: a torn *last* write (an
incomplete frame or a bad checksum in the final frame) is cut off and logged; damage anywhere
else, or a cut that would drop entries covered by a stored checkpoint, refuses to open
(:class:`~exchange.audit.errors.AuditLogCorruptError`): the file is evidence, never repaired.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Final

from exchange._internal.durable import fsync_dir
from exchange.audit.codec import MAX_ENTRY_BYTES, encode_entry
from exchange.audit.entry import AuditEntry
from exchange.audit.errors import AuditLogCorruptError, AuditStorageError
from exchange.audit.note import MAX_NOTE_BYTES
from exchange.audit.tree import MAX_TREE_SIZE, CompactRange, hash_leaf

__all__ = [
    "FILE_MAGIC",
    "FRAME_OVERHEAD",
    "FrameScan",
    "atomic_write",
    "read_bounded",
    "read_note_file",
    "scan_frames",
]

_log = logging.getLogger(__name__)

#: First bytes of ``entries.bin``: format name and version.
FILE_MAGIC: Final = b"exchange-audit-entries/v1\n"
FRAME_OVERHEAD: Final = 4 + 8
_LEN: Final = struct.Struct(">I")


def _check(length: bytes, data: bytes) -> bytes:
    return hashlib.sha256(length + data).digest()[:8]


def frame(data: bytes) -> bytes:
    """``u32be(len) || data || SHA-256(u32be(len) || data)[:8]``."""
    length = _LEN.pack(len(data))
    return length + data + _check(length, data)


class FrameScan:
    """The result of reading an entries file: the good frames and what follows them.

    Attributes:
        entries: the entry bytes of every intact frame, in order.
        offsets: file offset of each frame.
        good_end: file offset just after the last intact frame.
        tail: bytes after ``good_end`` (a torn write, or damage).
        damaged_middle: an invalid frame is followed by more data than one frame can hold.
    """

    def __init__(self) -> None:
        self.entries: list[bytes] = []
        self.offsets: list[int] = []
        self.good_end = len(FILE_MAGIC)
        self.tail = 0
        self.damaged_middle = False


def scan_frames(blob: bytes) -> FrameScan:
    """Split an entries file into frames without trusting any length beyond its bound.

    Raises:
        AuditLogCorruptError: the file does not start with :data:`FILE_MAGIC`.
    """
    if not blob.startswith(FILE_MAGIC):
        raise AuditLogCorruptError("entries file does not start with the format magic")
    scan = FrameScan()
    pos = len(FILE_MAGIC)
    while pos < len(blob):
        head = blob[pos : pos + 4]
        n = _LEN.unpack(head)[0] if len(head) == 4 else -1
        end = pos + 4 + n + 8
        if not 0 < n <= MAX_ENTRY_BYTES or end > len(blob):
            break
        data = blob[pos + 4 : pos + 4 + n]
        if _check(head, data) != blob[pos + 4 + n : end]:
            break
        scan.entries.append(data)
        scan.offsets.append(pos)
        pos = end
    scan.good_end = pos
    scan.tail = len(blob) - pos
    # Only the last write can be torn: anything longer than one frame after a bad one is damage.
    scan.damaged_middle = scan.tail > MAX_ENTRY_BYTES + FRAME_OVERHEAD
    return scan


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename (crash-safe).

    Raises:
        AuditStorageError: the disk failed.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise AuditStorageError(f"cannot write {path}: {exc.strerror}") from exc


def read_bounded(path: Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of ``path``: enough for the caller to see it is oversized,
    never a whole hostile file (a checkpoint note or ORIGIN is small by format).

    Raises:
        AuditStorageError: the file cannot be read (missing, a directory, no permission).
    """
    try:
        with path.open("rb") as f:
            return f.read(limit + 1)
    except OSError as exc:
        raise AuditStorageError(f"cannot read {path}: {exc.strerror}") from exc


def read_note_file(path: Path) -> bytes:
    """A stored signed note (checkpoint, witness state), read within the note bound; an
    oversized file then fails :meth:`Note.parse <exchange.audit.note.Note.parse>`.

    Raises:
        AuditStorageError: the file cannot be read.
    """
    return read_bounded(path, MAX_NOTE_BYTES)


class EntriesFile:
    """Append-only frames with the leaf hashes and the compact range kept in memory."""

    def __init__(self, path: Path, *, min_size: int) -> None:
        self._path = path
        self._lock = threading.Lock()
        try:
            if not path.exists():
                atomic_write(path, FILE_MAGIC)
            blob = path.read_bytes()
        except OSError as exc:
            raise AuditStorageError(f"cannot read {path}: {exc.strerror}") from exc
        scan = scan_frames(blob)
        if scan.damaged_middle:
            raise AuditLogCorruptError(f"{path}: damaged frame at byte {scan.good_end}")
        if len(scan.entries) < min_size:
            raise AuditLogCorruptError(
                f"{path}: {len(scan.entries)} intact entries, but a checkpoint covers {min_size}"
            )
        self._leaves = [hash_leaf(e) for e in scan.entries]
        self._offsets = scan.offsets
        self._range = CompactRange()
        for leaf in self._leaves:
            self._range.append(leaf)
        try:
            self._file: BinaryIO = path.open("r+b")
            if scan.tail:
                _log.warning("%s: cut a torn last write of %d bytes", path, scan.tail)
                self._file.truncate(scan.good_end)
                os.fsync(self._file.fileno())
            self._file.seek(scan.good_end)
        except OSError as exc:
            raise AuditStorageError(f"cannot open {path}: {exc.strerror}") from exc
        self._end = scan.good_end

    @property
    def leaves(self) -> list[bytes]:
        return self._leaves

    @property
    def size(self) -> int:
        return len(self._leaves)

    def root(self) -> bytes:
        return self._range.root()

    def head(self) -> tuple[int, bytes]:
        """``(size, root)`` read together, so a concurrent append cannot split them."""
        with self._lock:
            return self.size, self._range.root()

    def append(self, entries: Iterable[AuditEntry]) -> range:
        """Encode, write and fsync ``entries`` as one write; returns their indices.

        Raises:
            AuditStorageError: the disk failed (nothing is counted as appended).
            ValueError: an entry is too large or the log is full.
        """
        blobs = [encode_entry(e) for e in entries]
        with self._lock:
            start = self.size
            if start + len(blobs) > MAX_TREE_SIZE:
                raise ValueError("the log is full")
            frames = [frame(b) for b in blobs]
            try:
                self._file.write(b"".join(frames))
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError as exc:
                # Leave no partial frame for the next append to build on.
                self._file.truncate(self._end)
                self._file.seek(self._end)
                raise AuditStorageError(f"cannot append to {self._path}: {exc.strerror}") from exc
            for b, f in zip(blobs, frames, strict=True):
                leaf = hash_leaf(b)
                self._leaves.append(leaf)
                self._range.append(leaf)
                self._offsets.append(self._end)
                self._end += len(f)
            return range(start, self.size)

    def read(self, index: int) -> bytes:
        """The entry bytes at ``index``."""
        with self._lock:
            pos = self._offsets[index]
            self._file.seek(pos)
            n = _LEN.unpack(self._file.read(4))[0]
            data = self._file.read(n)
            self._file.seek(self._end)
        return data

    def __iter__(self) -> Iterator[bytes]:
        return (self.read(i) for i in range(self.size))

    def close(self) -> None:
        self._file.close()
