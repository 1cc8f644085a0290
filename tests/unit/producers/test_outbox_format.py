"""The outbox entry format: round trip, versioning, bounds, and what a scan reports."""

from __future__ import annotations

import pytest

from exchange.crypto.envelope import MAX_ENVELOPE
from exchange.producers._outbox_codec import (
    ENTRY_MAGIC,
    SEGMENT_MAGIC,
    OutboxEntry,
    encode_entry,
    scan_entries,
)


def _entry(seq: int, envelope: bytes = b"XE\x01sealed") -> OutboxEntry:
    return OutboxEntry(seq, "mex.usa.seizure.v1", b"record-%d" % seq, "seizure", envelope)


def test_entries_round_trip_through_a_segment() -> None:
    entries = [_entry(7), _entry(8, b"x" * 5000), _entry(9)]
    scan = scan_entries(SEGMENT_MAGIC + b"".join(encode_entry(e) for e in entries))
    assert scan.entries == entries
    assert scan.bad_at is None


def test_an_entry_starts_with_magic_and_version() -> None:
    blob = encode_entry(_entry(1))
    assert blob[:3] == ENTRY_MAGIC
    assert blob[3] == 1


def test_an_unknown_entry_version_is_reported_not_guessed() -> None:
    blob = bytearray(encode_entry(_entry(1)))
    blob[3] = 2
    scan = scan_entries(SEGMENT_MAGIC + bytes(blob))
    assert scan.entries == []
    assert scan.problem == "unknown entry version 2"


def test_a_flipped_byte_fails_the_checksum() -> None:
    blob = bytearray(encode_entry(_entry(1)))
    blob[40] ^= 1
    scan = scan_entries(SEGMENT_MAGIC + bytes(blob))
    assert scan.bad_at == len(SEGMENT_MAGIC)
    assert scan.problem == "checksum mismatch"


def test_a_length_beyond_the_bound_is_refused_before_reading() -> None:
    blob = bytearray(encode_entry(_entry(1)))
    blob[4:8] = (0xFFFFFFFF).to_bytes(4, "big")
    scan = scan_entries(SEGMENT_MAGIC + bytes(blob))
    assert "out of bounds" in scan.problem


def test_a_truncated_last_entry_is_a_bad_tail_with_nothing_after_it() -> None:
    good, torn = encode_entry(_entry(1)), encode_entry(_entry(2))
    scan = scan_entries(SEGMENT_MAGIC + good + torn[:-5])
    assert [e.seq for e in scan.entries] == [1]
    assert scan.bad_at == len(SEGMENT_MAGIC) + len(good)
    assert not scan.intact_after_bad


def test_damage_followed_by_an_intact_entry_is_flagged() -> None:
    first = bytearray(encode_entry(_entry(1)))
    first[30] ^= 0xFF
    scan = scan_entries(SEGMENT_MAGIC + bytes(first) + encode_entry(_entry(2)))
    assert scan.entries == []
    assert scan.intact_after_bad


def test_a_file_without_the_segment_magic_has_no_entries() -> None:
    scan = scan_entries(b"")
    assert (scan.entries, scan.bad_at) == ([], 0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("envelope", b""),
        ("envelope", b"x" * (MAX_ENVELOPE + 1)),
        ("topic", ""),
        ("topic", "t" * 250),
        ("key", b"k" * 257),
        ("seq", -1),
    ],
)
def test_entries_outside_the_bounds_are_refused(field: str, value: object) -> None:
    fields: dict[str, object] = {
        "seq": 1, "topic": "t", "key": b"k", "record_type": "seizure", "envelope": b"e",
    }  # fmt: skip
    fields[field] = value
    with pytest.raises(ValueError, match=field):
        OutboxEntry(**fields)  # type: ignore[arg-type]
