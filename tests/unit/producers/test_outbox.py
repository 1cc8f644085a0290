"""The outbox directory: durability across reopen, torn tails, damage, bounds, low-water
mark and segment deletion, and the one-writer lock."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from exchange.errors import OutboxCorruptError, OutboxError
from exchange.producers._outbox_codec import SEGMENT_MAGIC, OutboxEntry, encode_entry
from exchange.producers.outbox import SETTLED_FILE, Outbox, Spool


def _spool(n: int, *, size: int = 100, tag: str = "r") -> list[Spool]:
    return [
        ("mex.usa.seizure.v1", f"{tag}-{i}".encode(), "seizure", bytes([i % 256]) * size)
        for i in range(n)
    ]


def _all_pending(outbox: Outbox) -> list[OutboxEntry]:
    out: list[OutboxEntry] = []
    seq = 0
    while batch := outbox.read_from(seq):
        out += batch
        seq = batch[-1].seq + 1
    return out


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def test_appended_entries_survive_a_reopen_in_order(tmp_path: Path) -> None:
    with Outbox(tmp_path) as outbox:
        first = outbox.append(_spool(3, tag="a"))
        second = outbox.append(_spool(2, tag="b"))
    assert [e.seq for e in first + second] == [0, 1, 2, 3, 4]
    with Outbox(tmp_path) as reopened:
        assert _all_pending(reopened) == first + second
        assert reopened.pending == 5
        assert reopened.next_seq == 5


def test_a_torn_last_append_is_cut_and_later_appends_continue(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Outbox(tmp_path) as outbox:
        kept = outbox.append(_spool(2))
    torn = encode_entry(OutboxEntry(2, "t", b"k", "seizure", b"never fsynced" * 20))
    (segment,) = _segments(tmp_path)
    with segment.open("ab") as f:
        f.write(torn[: len(torn) // 2])
    with caplog.at_level(logging.WARNING), Outbox(tmp_path) as reopened:
        assert _all_pending(reopened) == kept
        later = reopened.append(_spool(1, tag="later"))
    assert "cut a torn last append" in caplog.text
    assert later[0].seq == 2
    with Outbox(tmp_path) as again:
        assert _all_pending(again) == [*kept, *later]


def test_a_segment_cut_before_its_magic_was_written_is_repaired(tmp_path: Path) -> None:
    with Outbox(tmp_path, segment_bytes=1) as outbox:
        outbox.append(_spool(1))
        outbox.append(_spool(1))  # rolls: a second segment begins at seq 1
    last = _segments(tmp_path)[-1]
    last.write_bytes(SEGMENT_MAGIC[:5])  # the crash hit while the new segment was created
    with Outbox(tmp_path) as reopened:
        assert [e.seq for e in _all_pending(reopened)] == [0]
        assert reopened.append(_spool(1))[0].seq == 1


def test_damage_in_the_middle_of_a_segment_refuses_to_open(tmp_path: Path) -> None:
    with Outbox(tmp_path) as outbox:
        outbox.append(_spool(3))
    (segment,) = _segments(tmp_path)
    blob = bytearray(segment.read_bytes())
    blob[len(SEGMENT_MAGIC) + 40] ^= 0x01  # inside the first entry; two intact ones follow
    segment.write_bytes(bytes(blob))
    with pytest.raises(OutboxCorruptError, match="not a torn last append"):
        Outbox(tmp_path)


def test_damage_at_the_end_of_an_earlier_segment_refuses_to_open(tmp_path: Path) -> None:
    with Outbox(tmp_path, segment_bytes=1) as outbox:
        outbox.append(_spool(1))
        outbox.append(_spool(1))
    first = _segments(tmp_path)[0]
    first.write_bytes(first.read_bytes()[:-3])  # only the last segment may be torn
    with pytest.raises(OutboxCorruptError):
        Outbox(tmp_path)


def test_a_missing_segment_refuses_to_open(tmp_path: Path) -> None:
    with Outbox(tmp_path, segment_bytes=1) as outbox:
        for _ in range(3):
            outbox.append(_spool(1))
    _segments(tmp_path)[1].unlink()
    with pytest.raises(OutboxCorruptError, match="a segment is missing"):
        Outbox(tmp_path)


def test_a_damaged_settled_file_refuses_to_open(tmp_path: Path) -> None:
    with Outbox(tmp_path) as outbox:
        outbox.append(_spool(2))
    (tmp_path / SETTLED_FILE).write_bytes(b"garbage")
    with pytest.raises(OutboxCorruptError):
        Outbox(tmp_path)


def test_the_byte_bound_makes_the_outbox_full_while_envelopes_wait(tmp_path: Path) -> None:
    with Outbox(tmp_path, max_bytes=3000) as outbox:
        assert not outbox.full()
        outbox.append(_spool(10, size=300))
        assert outbox.size_bytes >= 3000
        assert outbox.full()
        for seq in range(10):
            outbox.settle(seq)
        outbox.commit()
        # Nothing waits any more: the settled bytes go with their segment at the next roll.
        assert not outbox.full()


def test_settled_segments_are_deleted_and_the_outbox_is_no_longer_full(tmp_path: Path) -> None:
    with Outbox(tmp_path, max_bytes=3000, segment_bytes=1000) as outbox:
        for _ in range(6):
            outbox.append(_spool(2, size=300))
        assert outbox.full()
        segments = len(_segments(tmp_path))
        for seq in range(8):
            outbox.settle(seq)
        assert outbox.commit() == 4
        assert len(_segments(tmp_path)) == segments - 4
        assert not outbox.full()
        assert [e.seq for e in _all_pending(outbox)] == [8, 9, 10, 11]


def test_the_low_water_mark_advances_only_over_a_gapless_prefix(tmp_path: Path) -> None:
    with Outbox(tmp_path) as outbox:
        outbox.append(_spool(5))
        for seq in (0, 1, 3):
            outbox.settle(seq)
        assert outbox.settled_below == 2
        assert outbox.pending == 2
        assert [e.seq for e in _all_pending(outbox)] == [2, 4]
    with Outbox(tmp_path) as reopened:
        # Only the gapless prefix is durable: entry 3 is sent again (the sink sees a duplicate).
        assert reopened.settled_below == 2
        assert [e.seq for e in _all_pending(reopened)] == [2, 3, 4]


def test_settling_an_entry_never_appended_is_a_bug(tmp_path: Path) -> None:
    with Outbox(tmp_path) as outbox, pytest.raises(ValueError, match="never appended"):
        outbox.settle(0)


def test_a_second_writer_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    first = Outbox(tmp_path)
    with pytest.raises(OutboxError, match="in use by another producer"):
        Outbox(tmp_path)
    first.close()
    Outbox(tmp_path).close()


def test_sequence_numbers_continue_after_everything_was_settled_and_deleted(
    tmp_path: Path,
) -> None:
    with Outbox(tmp_path, segment_bytes=1) as outbox:
        for _ in range(3):
            outbox.append(_spool(1))
        for seq in range(3):
            outbox.settle(seq)
    with Outbox(tmp_path) as reopened:
        assert reopened.pending == 0
        assert reopened.append(_spool(1))[0].seq == 3


def test_pending_topics_name_every_topic_still_waiting(tmp_path: Path) -> None:
    with Outbox(tmp_path, segment_bytes=1) as outbox:
        outbox.append([("a", b"k", "seizure", b"x"), ("b", b"k", "seizure", b"x")])
        outbox.append([("c", b"k", "seizure", b"x")])
        outbox.settle(0)
        assert outbox.pending_topics() == {"b", "c"}
