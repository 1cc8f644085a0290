"""JSON-lines specifics: segment files, orphan temporaries, corruption, the single-writer lock."""

from __future__ import annotations

import hashlib
import json
import signal
from pathlib import Path

import pytest

from exchange.sinks import JsonlSink, SinkError
from tests.unit.sinks.sink_contract import run_child
from tests.unit.sinks.sink_data import TOPIC, make_stream


def test_each_batch_is_one_segment_and_a_no_op_batch_writes_none(tmp_path: Path) -> None:
    stream = make_stream(9)
    with JsonlSink(tmp_path) as sink:
        sink.write("g", stream[:4])
        sink.write("g", stream[4:])
        sink.write("g", stream[4:])  # all duplicates, offsets unchanged: nothing to record
    segments = sorted(p.name for p in (tmp_path / "segments").iterdir())
    assert segments == ["000000000001.jsonl", "000000000002.jsonl"]
    lines = (tmp_path / "segments" / segments[0]).read_text().splitlines()
    assert len(lines) == 1 + 4 + 1  # header, records, checksum trailer


def test_orphan_temporary_from_a_crash_is_ignored_and_removed(tmp_path: Path) -> None:
    url = f"jsonl:{tmp_path}"
    killed = run_child(url, count=30, batch=10, kill_at=1)
    assert killed.returncode == -signal.SIGKILL
    orphans = list(tmp_path.glob(".tmp-*.jsonl"))
    assert [p.name for p in orphans] == [".tmp-000000000002.jsonl"]
    assert orphans[0].stat().st_size > 0  # fully written, just never renamed
    with JsonlSink(tmp_path) as sink:
        assert sink.count() == 10
    assert list(tmp_path.glob(".tmp-*.jsonl")) == []


def test_a_tampered_segment_is_reported_not_skipped(tmp_path: Path) -> None:
    with JsonlSink(tmp_path) as sink:
        sink.write("g", make_stream(3))
    segment = tmp_path / "segments" / "000000000001.jsonl"
    segment.write_text(segment.read_text().replace('\\"n\\": 1', '\\"n\\": 7'))
    with pytest.raises(SinkError, match="checksum mismatch") as caught:
        JsonlSink(tmp_path)
    assert caught.value.retriable is False


def test_a_truncated_segment_is_reported(tmp_path: Path) -> None:
    with JsonlSink(tmp_path) as sink:
        sink.write("g", make_stream(3))
    segment = tmp_path / "segments" / "000000000001.jsonl"
    segment.write_bytes(segment.read_bytes()[:-40])
    with pytest.raises(SinkError, match="corrupt"):
        JsonlSink(tmp_path)


def test_a_second_writer_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    first = JsonlSink(tmp_path)
    with pytest.raises(SinkError, match="in use by another process"):
        JsonlSink(tmp_path)
    first.close()
    with JsonlSink(tmp_path) as second:
        assert second.count() == 0


def test_records_come_back_in_storage_order_across_segments(tmp_path: Path) -> None:
    stream = make_stream(12)
    with JsonlSink(tmp_path) as sink:
        for start in range(0, 12, 5):
            sink.write("g", stream[start : start + 5])
        assert list(sink.records()) == stream
        assert sink.get(stream[11].message_id) == stream[11]


def test_the_header_keeps_one_window_per_producer_and_partition(tmp_path: Path) -> None:
    with JsonlSink(tmp_path) as sink:
        sink.write("g", make_stream(8, producers=2, partitions=2))
    first = (tmp_path / "segments" / "000000000001.jsonl").read_text().splitlines()[0]
    header = json.loads(first)
    assert "producers" not in header
    # [sender, producer_id, topic, partition, epoch, highest, bitmap hex], sorted by key
    assert [row[:6] for row in header["windows"]] == [
        ["MEX-FGR", "producer-0", TOPIC, 0, 0, 2],
        ["MEX-FGR", "producer-0", TOPIC, 1, 0, 3],
        ["MEX-FGR", "producer-1", TOPIC, 0, 0, 3],
        ["MEX-FGR", "producer-1", TOPIC, 1, 0, 2],
    ]
    assert all(len(bytes.fromhex(row[6])) == 128 for row in header["windows"])


def test_a_header_without_partition_windows_is_reported(tmp_path: Path) -> None:
    # The pre-release layout kept one window per producer under "producers".
    header = {"format": "exchange-sink-jsonl", "version": 1, "group": "g", "records": 0,
              "offsets": [], "producers": [["MEX-FGR", "p", 0, 0, "00" * 128]]}  # fmt: skip
    body = (json.dumps(header) + "\n").encode()
    trailer = json.dumps({"sha256": hashlib.sha256(body).hexdigest()}) + "\n"
    (tmp_path / "segments").mkdir()
    (tmp_path / "segments" / "000000000001.jsonl").write_bytes(body + trailer.encode())
    with pytest.raises(SinkError, match="no replay windows per producer and partition"):
        JsonlSink(tmp_path)
