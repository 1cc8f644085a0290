"""The outbox's on-disk framing: one entry per sealed envelope, versioned and bounded.

::

    segment = SEGMENT_MAGIC, then entries
    entry   = "XOB" || version (u8, 1) || u32be(n) || body[n] || SHA-256(prefix || body)[:16]
    body    = u64be(seq) || u16be-len topic || u16be-len key || u8-len record type
              || u32be-len envelope

Every length is checked against its bound before its bytes are read, so a damaged length
never makes the reader allocate or skip more than one maximal entry. The checksum is
SHA-256 (stdlib, about a microsecond per KiB, the construction the audit log's frames use)
truncated to 128 bits: it detects torn and damaged writes, it is not a signature (the
envelope inside carries its own).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Final

from exchange.crypto.envelope import MAX_ENVELOPE

__all__ = [
    "ENTRY_MAGIC",
    "ENTRY_VERSION",
    "MAX_BODY",
    "SEGMENT_MAGIC",
    "EntryScan",
    "OutboxEntry",
    "encode_entry",
    "scan_entries",
]

#: First bytes of every segment file: format name and version.
SEGMENT_MAGIC: Final = b"exchange-outbox-segment/v1\n"
ENTRY_MAGIC: Final = b"XOB"
ENTRY_VERSION: Final = 1
_PREFIX: Final = struct.Struct(">3sBI")
_CHECK_BYTES: Final = 16
#: Kafka's own limit on topic names.
MAX_TOPIC: Final = 249
MAX_KEY: Final = 256
MAX_RECORD_TYPE: Final = 64
MAX_BODY: Final = 8 + 2 + MAX_TOPIC + 2 + MAX_KEY + 1 + MAX_RECORD_TYPE + 4 + MAX_ENVELOPE
#: Largest encoded entry, prefix and checksum included.
MAX_ENTRY: Final = _PREFIX.size + MAX_BODY + _CHECK_BYTES


@dataclass(frozen=True)
class OutboxEntry:
    """One sealed envelope waiting for (or past) its delivery.

    Attributes:
        seq: the outbox sequence number: dense, increasing, the order of sending.
        topic: the exchange topic the envelope is sealed for (bound into its header).
        key: the Kafka key (the record id), which also picks the partition.
        record_type: record type name (metrics labels, the Kafka routing header).
        envelope: the sealed envelope bytes, sent as they are.
    """

    seq: int
    topic: str
    key: bytes
    record_type: str
    envelope: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.seq < 1 << 64:
            raise ValueError(f"seq: got {self.seq}, expected 0 <= seq < 2**64")
        for name, value, bound in (
            ("topic", self.topic.encode(), MAX_TOPIC),
            ("key", self.key, MAX_KEY),
            ("record_type", self.record_type.encode(), MAX_RECORD_TYPE),
            ("envelope", self.envelope, MAX_ENVELOPE),
        ):
            if not 0 < len(value) <= bound:
                raise ValueError(f"{name}: got {len(value)} bytes, expected 1 to {bound}")


def _check(prefix: bytes, body: bytes) -> bytes:
    return hashlib.sha256(prefix + body).digest()[:_CHECK_BYTES]


def encode_entry(entry: OutboxEntry) -> bytes:
    """The entry's bytes as written to a segment."""
    topic, rtype = entry.topic.encode(), entry.record_type.encode()
    body = b"".join(
        (
            struct.pack(">QH", entry.seq, len(topic)), topic,
            struct.pack(">H", len(entry.key)), entry.key,
            struct.pack(">B", len(rtype)), rtype,
            struct.pack(">I", len(entry.envelope)), entry.envelope,
        )
    )  # fmt: skip
    prefix = _PREFIX.pack(ENTRY_MAGIC, ENTRY_VERSION, len(body))
    return prefix + body + _check(prefix, body)


class _BadEntryError(Exception):
    """The bytes at a position are not an intact entry; the message says why."""


def _decode_body(body: bytes) -> OutboxEntry:
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(body):
            raise _BadEntryError("malformed entry body (a field runs past it)")
        out = body[pos : pos + n]
        pos += n
        return out

    (seq,) = struct.unpack(">Q", take(8))
    topic = take(struct.unpack(">H", take(2))[0])
    key = take(struct.unpack(">H", take(2))[0])
    rtype = take(struct.unpack(">B", take(1))[0])
    envelope = take(struct.unpack(">I", take(4))[0])
    if pos != len(body):
        raise _BadEntryError("malformed entry body (bytes after the last field)")
    try:
        return OutboxEntry(seq, topic.decode(), key, rtype.decode(), envelope)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _BadEntryError(f"malformed entry body ({exc})") from None


@dataclass
class EntryScan:
    """What a segment holds: its intact entries, and where the intact part ends.

    Attributes:
        entries: every intact entry before the first bad one, in file order.
        good_end: file offset just after the last intact entry.
        bad_at: offset of the first bad entry, or ``None`` when the file ends cleanly.
        intact_after_bad: an intact entry lies somewhere after ``bad_at``: the damage is not
            a torn last append (which can only be followed by more of itself).
        problem: what is wrong at ``bad_at``.
    """

    entries: list[OutboxEntry]
    good_end: int
    bad_at: int | None = None
    intact_after_bad: bool = False
    problem: str = ""


def _parse_at(blob: bytes, pos: int) -> tuple[OutboxEntry, int]:
    head = blob[pos : pos + _PREFIX.size]
    if len(head) < _PREFIX.size:
        raise _BadEntryError("incomplete entry prefix")
    magic, version, n = _PREFIX.unpack(head)
    if magic != ENTRY_MAGIC:
        raise _BadEntryError("bad entry magic")
    if version != ENTRY_VERSION:
        raise _BadEntryError(f"unknown entry version {version}")
    if not 0 < n <= MAX_BODY:
        raise _BadEntryError(f"entry length {n} out of bounds")
    end = pos + _PREFIX.size + n + _CHECK_BYTES
    if end > len(blob):
        raise _BadEntryError("incomplete entry")
    body = blob[pos + _PREFIX.size : end - _CHECK_BYTES]
    if _check(head, body) != blob[end - _CHECK_BYTES : end]:
        raise _BadEntryError("checksum mismatch")
    try:
        return _decode_body(body), end
    except struct.error as exc:
        raise _BadEntryError(f"malformed entry body ({exc})") from None


def _entry_at(blob: bytes, pos: int) -> tuple[OutboxEntry | None, int, str]:
    """The entry starting at ``pos`` and its end, or ``None`` and why not."""
    try:
        entry, end = _parse_at(blob, pos)
    except _BadEntryError as exc:
        return None, pos, str(exc)
    return entry, end, ""


def scan_entries(blob: bytes) -> EntryScan:
    """Read a segment's entries without trusting any length beyond its bound.

    A segment that does not start with :data:`SEGMENT_MAGIC` has no intact entry and
    ``bad_at`` 0 (a crash between creating the file and writing its magic leaves it empty).
    """
    if not blob.startswith(SEGMENT_MAGIC):
        return EntryScan([], 0, bad_at=0, problem="no segment magic")
    scan = EntryScan([], len(SEGMENT_MAGIC))
    pos = scan.good_end
    while pos < len(blob):
        entry, end, problem = _entry_at(blob, pos)
        if entry is None:
            scan.bad_at, scan.problem = pos, problem
            break
        scan.entries.append(entry)
        pos = scan.good_end = end
    if scan.bad_at is not None:
        # Look for any intact entry after the damage: its presence means data that was
        # written after the bad bytes, so the bad bytes are not a torn last append.
        probe = blob.find(ENTRY_MAGIC, scan.bad_at + 1)
        while probe != -1:
            if _entry_at(blob, probe)[0] is not None:
                scan.intact_after_bad = True
                break
            probe = blob.find(ENTRY_MAGIC, probe + 1)
    return scan
