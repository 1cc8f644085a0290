"""A durable, bounded, on-disk outbox of sealed envelopes (a write-ahead log).

:class:`~exchange.producers.SecureProducer` appends every sealed batch here, with one
``fsync``, *before* it hands the envelopes to librdkafka; a delivery report settles an entry;
the durable low-water mark ("every entry below N is settled") is persisted by atomic rename,
and whole segments below it are deleted. When the brokers stay unreachable the entries
simply stay, and the producer sends them again, in order, when the cluster is back (also
after a restart). docs/decisions/0007-durable-outbox.md says why; docs/operations.md
("Producer outbox") is the operator's view.

Directory layout (one producer per directory, held by an exclusive ``flock``)::

    LOCK                         flock target; never holds data
    SETTLED                      SETTLED_MAGIC || u64be(settled_below) || SHA-256(...)[:16]
    <first seq, 20 digits>.seg   segments of entries (exchange.producers._outbox_codec)

Only the last append of the last segment can be torn by a crash: it was never ``fsync``ed,
so no caller was told it was durable, and it is cut off on open (and logged). Damage
anywhere else raises :class:`~exchange.errors.OutboxCorruptError`: cutting it would drop
envelopes a caller was told are safe.
"""

from __future__ import annotations

import bisect
import fcntl
import hashlib
import logging
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final

from exchange._internal.durable import fsync_dir
from exchange.errors import OutboxCorruptError, OutboxError
from exchange.producers._outbox_codec import (
    SEGMENT_MAGIC,
    OutboxEntry,
    encode_entry,
    scan_entries,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_SEGMENT_BYTES",
    "Outbox",
    "OutboxEntry",
    "Spool",
]

_log = logging.getLogger(__name__)

#: Undelivered envelopes kept on disk at most (admission bound; see :meth:`Outbox.full`).
DEFAULT_MAX_BYTES: Final = 1 << 30
#: A segment is closed and a new one begun once it holds this much.
DEFAULT_SEGMENT_BYTES: Final = 8 << 20

LOCK_FILE: Final = "LOCK"
SETTLED_FILE: Final = "SETTLED"
SETTLED_MAGIC: Final = b"exchange-outbox-settled/v1\n"
_SEGMENT_NAME = re.compile(r"^(\d{20})\.seg$")

#: What an append takes: (topic, key, record type, envelope) per sealed envelope.
Spool = tuple[str, bytes, str, bytes]


@dataclass
class _Segment:
    first_seq: int
    path: Path
    size: int


def _segment_path(directory: Path, first_seq: int) -> Path:
    return directory / f"{first_seq:020d}.seg"


def _settled_blob(settled_below: int) -> bytes:
    body = SETTLED_MAGIC + struct.pack(">Q", settled_below)
    return body + hashlib.sha256(body).digest()[:16]


class Outbox:
    """An exclusive, crash-safe, bounded log of sealed envelopes in ``directory``.

    Args:
        directory: created when missing; one producer at a time.
        max_bytes: refuse new records (:meth:`full`) once the segments hold this much.
        segment_bytes: size at which a new segment begins (deletion is per segment).

    Raises:
        OutboxError: another producer holds the directory, or the disk failed.
        OutboxCorruptError: the outbox is damaged beyond a torn last append.

    Not thread-safe: the producer calls it from the thread that publishes and polls.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        if max_bytes <= 0 or segment_bytes <= 0:
            raise ValueError("max_bytes and segment_bytes must be positive")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._lock_fd = self._lock()
        try:
            self._segments: list[_Segment] = []
            self._next_seq = 0
            self._settled_below = 0
            self._settled_above: set[int] = set()
            self._file: int | None = None
            self._persisted = -1
            self._recover()
        except BaseException:
            self._close_files()
            raise

    # -- opening ---------------------------------------------------------------------------

    def _lock(self) -> int:
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise OutboxError(f"cannot open the outbox {self.directory}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutboxError(
                f"the outbox {self.directory} is in use by another producer; one producer per "
                "outbox directory (give each publishing process its own --outbox)"
            ) from None
        return fd

    def _recover(self) -> None:
        try:
            names = sorted(p.name for p in self.directory.iterdir())
        except OSError as exc:
            raise OutboxError(f"cannot list the outbox {self.directory}: {exc.strerror}") from exc
        for name in names:
            m = _SEGMENT_NAME.match(name)
            if m:
                path = self.directory / name
                self._segments.append(_Segment(int(m.group(1)), path, path.stat().st_size))
        expected: int | None = None
        for i, seg in enumerate(self._segments):
            last = i == len(self._segments) - 1
            count = self._check_segment(seg, last=last)
            if expected is not None and seg.first_seq != expected:
                raise OutboxCorruptError(
                    f"outbox {self.directory}: segment {seg.path.name} begins at {seg.first_seq}, "
                    f"expected {expected} (a segment is missing)"
                )
            expected = seg.first_seq + count
        self._next_seq = 0 if expected is None else expected
        first = self._segments[0].first_seq if self._segments else 0
        self._settled_below = max(self._read_settled(first), first)
        if self._settled_below > self._next_seq:
            raise OutboxCorruptError(
                f"outbox {self.directory}: {SETTLED_FILE} says {self._settled_below} entries "
                f"are settled but the segments end at {self._next_seq}"
            )
        if not self._segments:
            self._new_segment(self._next_seq)
        else:
            self._open_active()
        self._write_settled()
        if self.pending:
            _log.info(
                "outbox %s: %d envelope(s) from an earlier run wait to be sent (%d bytes)",
                self.directory, self.pending, self.size_bytes,
            )  # fmt: skip

    def _check_segment(self, seg: _Segment, *, last: bool) -> int:
        blob = self._read(seg.path)
        scan = scan_entries(blob)
        for n, entry in enumerate(scan.entries):
            if entry.seq != seg.first_seq + n:
                raise OutboxCorruptError(
                    f"outbox {seg.path}: entry {n} has sequence {entry.seq}, "
                    f"expected {seg.first_seq + n}"
                )
        if scan.bad_at is None:
            return len(scan.entries)
        if not last or scan.intact_after_bad:
            raise OutboxCorruptError(
                f"outbox {seg.path}: {scan.problem} at byte {scan.bad_at}, not a torn last append"
            )
        # The torn tail of the last append, never fsynced: no caller was told it was safe.
        _log.warning(
            "outbox %s: cut a torn last append of %d bytes (%s); it was never reported durable",
            seg.path, len(blob) - scan.good_end, scan.problem,
        )  # fmt: skip
        try:
            with seg.path.open("r+b") as f:
                if scan.good_end == 0:
                    f.write(SEGMENT_MAGIC)
                    scan.good_end = len(SEGMENT_MAGIC)
                f.truncate(scan.good_end)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise OutboxError(f"cannot repair {seg.path}: {exc.strerror}") from exc
        seg.size = scan.good_end
        return len(scan.entries)

    def _read_settled(self, default: int) -> int:
        path = self.directory / SETTLED_FILE
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            # Written on every open, so missing means a first open or a deleted file;
            # assuming nothing is settled only re-sends (the record is stored once; the
            # consumer quarantines a copy at another offset as `replay`).
            return default
        except OSError as exc:
            raise OutboxError(f"cannot read {path}: {exc.strerror}") from exc
        body, check = blob[:-16], blob[-16:]
        if (
            len(blob) != len(SETTLED_MAGIC) + 8 + 16
            or not body.startswith(SETTLED_MAGIC)
            or hashlib.sha256(body).digest()[:16] != check
        ):
            raise OutboxCorruptError(f"outbox {path} is damaged (written only by atomic rename)")
        return int(struct.unpack(">Q", body[len(SETTLED_MAGIC) :])[0])

    # -- state -----------------------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        """The sequence number the next appended entry gets."""
        return self._next_seq

    @property
    def settled_below(self) -> int:
        """Low-water mark in memory: every entry with a smaller sequence is settled."""
        return self._settled_below

    @property
    def pending(self) -> int:
        """Entries not yet settled (delivered, or failed for good)."""
        return self._next_seq - self._settled_below - len(self._settled_above)

    @property
    def size_bytes(self) -> int:
        """Bytes the segments take on disk (settled entries included until their segment goes)."""
        return sum(s.size for s in self._segments)

    def full(self) -> bool:
        """Whether new records must be refused: undelivered envelopes wait and the segments
        hold ``max_bytes`` or more.

        Checked before a record is sealed; the envelopes already sealed are always written,
        so the disk may exceed ``max_bytes`` by at most one sealed batch. Settled entries
        count until their segment is deleted (a segment goes once it is wholly settled and
        not the one being written), so keep ``max_bytes`` several times ``segment_bytes``.
        """
        return self.pending > 0 and self.size_bytes >= self.max_bytes

    def is_settled(self, seq: int) -> bool:
        return seq < self._settled_below or seq in self._settled_above

    # -- writing ---------------------------------------------------------------------------

    def append(self, items: Sequence[Spool]) -> list[OutboxEntry]:
        """Write ``items`` as one append and ``fsync`` it; return their entries.

        Once this returns the envelopes survive a crash.

        Raises:
            OutboxError: the disk failed (nothing of this append counts as written).
            ValueError: an item is out of the format's bounds.
        """
        if not items:
            return []
        entries = [OutboxEntry(self._next_seq + i, *item) for i, item in enumerate(items)]
        blob = b"".join(encode_entry(e) for e in entries)
        active = self._segments[-1]
        if active.size > len(SEGMENT_MAGIC) and active.size + len(blob) > self._segment_bytes:
            self._new_segment(self._next_seq)
            active = self._segments[-1]
        assert self._file is not None  # noqa: S101  # opened by _recover or _new_segment
        try:
            os.lseek(self._file, active.size, os.SEEK_SET)
            view = memoryview(blob)
            while view:
                view = view[os.write(self._file, view) :]
            os.fsync(self._file)
        except OSError as exc:
            # Cut what may have been written, so the next append starts on an entry boundary.
            try:
                os.ftruncate(self._file, active.size)
            except OSError:
                _log.exception("outbox %s: could not cut a failed append", active.path)
            raise OutboxError(f"cannot write the outbox {active.path}: {exc.strerror}") from exc
        active.size += len(blob)
        self._next_seq += len(entries)
        return entries

    def settle(self, seq: int) -> None:
        """Mark ``seq`` delivered (or failed for good) in memory; :meth:`commit` persists it."""
        if not 0 <= seq < self._next_seq:
            raise ValueError(f"seq {seq} was never appended (next is {self._next_seq})")
        if seq < self._settled_below:
            return
        self._settled_above.add(seq)
        while self._settled_below in self._settled_above:
            self._settled_above.remove(self._settled_below)
            self._settled_below += 1

    def commit(self) -> int:
        """Persist the low-water mark if it moved, and delete segments wholly below it.

        Returns:
            The number of segments deleted.

        Raises:
            OutboxError: the disk failed.
        """
        if self._settled_below == self._persisted:
            return 0
        self._write_settled()
        deleted = 0
        while len(self._segments) > 1 and self._segments[1].first_seq <= self._settled_below:
            seg = self._segments.pop(0)
            try:
                seg.path.unlink()
            except OSError as exc:
                raise OutboxError(f"cannot delete {seg.path}: {exc.strerror}") from exc
            deleted += 1
        if deleted:
            fsync_dir(self.directory)
        return deleted

    def _write_settled(self) -> None:
        path = self.directory / SETTLED_FILE
        tmp = path.with_name(SETTLED_FILE + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, _settled_blob(self._settled_below))
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp.replace(path)
            fsync_dir(self.directory)
        except OSError as exc:
            raise OutboxError(f"cannot write {path}: {exc.strerror}") from exc
        self._persisted = self._settled_below

    def _new_segment(self, first_seq: int) -> None:
        path = _segment_path(self.directory, first_seq)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, SEGMENT_MAGIC)
            os.fsync(fd)
            fsync_dir(self.directory)
        except OSError as exc:
            raise OutboxError(f"cannot create {path}: {exc.strerror}") from exc
        if self._file is not None:
            os.close(self._file)
        self._file = fd
        self._segments.append(_Segment(first_seq, path, len(SEGMENT_MAGIC)))

    def _open_active(self) -> None:
        path = self._segments[-1].path
        try:
            self._file = os.open(path, os.O_RDWR)
        except OSError as exc:
            raise OutboxError(f"cannot open {path}: {exc.strerror}") from exc

    # -- reading ---------------------------------------------------------------------------

    def read_from(self, seq: int) -> list[OutboxEntry]:
        """Unsettled entries from ``seq`` on, from the first segment that has any.

        Only one segment's entries are returned per call, so memory stays bounded by the
        segment size however many envelopes wait; call again with the next sequence for more.

        Raises:
            OutboxCorruptError: the segment was damaged since the outbox was opened.
            OutboxError: the disk failed.
        """
        if seq >= self._next_seq:
            return []
        seq = max(seq, self._settled_below)
        firsts = [s.first_seq for s in self._segments]
        for seg in self._segments[max(bisect.bisect_right(firsts, seq) - 1, 0) :]:
            scan = scan_entries(self._read(seg.path)[: seg.size])
            if scan.bad_at is not None:
                raise OutboxCorruptError(
                    f"outbox {seg.path}: {scan.problem} at byte {scan.bad_at} (damaged while open)"
                )
            found = [e for e in scan.entries if e.seq >= seq and not self.is_settled(e.seq)]
            if found:
                return found
        return []

    def pending_topics(self) -> set[str]:
        """Topics of the unsettled entries (read one segment at a time).

        A producer that resumes an earlier run's outbox creates them first: that run may
        have spooled envelopes for a topic the absent cluster could not create.
        """
        topics: set[str] = set()
        seq = self._settled_below
        while entries := self.read_from(seq):
            topics.update(e.topic for e in entries)
            seq = entries[-1].seq + 1
        return topics

    def _read(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise OutboxError(f"cannot read {path}: {exc.strerror}") from exc

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Persist the low-water mark and release the directory; entries stay on disk."""
        if self._lock_fd < 0:
            return
        try:
            self.commit()
        finally:
            self._close_files()

    def _close_files(self) -> None:
        if self._file is not None:
            os.close(self._file)
            self._file = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    @property
    def closed(self) -> bool:
        return self._lock_fd < 0

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Outbox({str(self.directory)!r}, pending={self.pending}, "
            f"bytes={self.size_bytes}, max_bytes={self.max_bytes})"
        )
