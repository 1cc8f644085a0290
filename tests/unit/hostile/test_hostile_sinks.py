"""The sinks under hostile deliveries: odd Unicode, huge fields within the bounds, invalid
field values, and damaged JSON-lines segments. A delivery is stored exactly (read back equal
after a reopen, on SQLite and JSON lines alike) or refused with a typed error before any
backend sees it; a damaged segment is a ``SinkError``, never a traceback or silent loss."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.records import MAX_RECORD_BYTES
from exchange.sinks import DeliveredRecord, SinkError, open_sink
from tests.unit.hostile.hostile_support import hostile

_SCHEMES = ["sqlite", "jsonl"]
# Any Unicode scalar value: NUL, controls, U+2028/9, BOM, noncharacters, astral planes.
_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=128)


@st.composite
def deliveries(draw: st.DrawFn) -> list[DeliveredRecord]:
    n = draw(st.integers(1, 6))
    sender, producer = draw(_TEXT), draw(_TEXT)
    big = draw(st.sampled_from([0, 64 << 10, MAX_RECORD_BYTES]))
    return [
        DeliveredRecord(
            message_id=f"{i}:{draw(_TEXT)}",  # unique within the batch
            sender=sender,
            producer_id=producer,
            producer_epoch=draw(st.integers(0, 2**63 - 1)),
            sequence=i,
            record_type=draw(_TEXT),
            record_id=draw(_TEXT),
            topic=draw(_TEXT),
            partition=draw(st.integers(0, 2**31 - 1)),
            offset=draw(st.integers(0, 2**63 - 2)),
            created_at=datetime(2026, 1, 1, tzinfo=UTC)
            + timedelta(microseconds=draw(st.integers(-(10**15), 10**15))),
            record_json=draw(st.text(st.characters(blacklist_categories=["Cs"]), max_size=256))
            + "z" * (big if i == 0 else 0),
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("scheme", _SCHEMES)
@hostile(12, deadline_s=5)
@given(items=deliveries())
def test_odd_but_valid_deliveries_are_stored_exactly(
    scheme: str, items: list[DeliveredRecord]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"{scheme}:{Path(tmp) / 'store'}"
        with open_sink(url) as sink:
            # Several producers' windows or one: each item is judged, none is lost silently.
            result = sink.write("g", items)
            stored = {r.message_id: r for r in sink.records()}
        with open_sink(url) as sink:
            again = {r.message_id: r for r in sink.records()}
    assert again == stored
    assert result.written + result.duplicates + result.rejected == len(items)
    assert result.written == len(stored)
    for item in items:
        if item.message_id in stored:
            assert stored[item.message_id] == item  # byte for byte, every field


def _valid(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "message_id": "m", "sender": "MEX-FGR", "producer_id": "p", "producer_epoch": 0,
        "sequence": 0, "record_type": "seizure", "record_id": "r", "topic": "t",
        "partition": 0, "offset": 0, "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "record_json": "{}",
    }  # fmt: skip
    return fields | overrides


@pytest.mark.parametrize(
    "overrides",
    [
        {"record_json": "\ud800"},  # a lone surrogate: SQLite refused it, JSON lines kept it
        {"message_id": "a\udfffb"},
        {"sender": ""},
        {"sequence": -1},
        {"sequence": 2**63},
        {"offset": 2**63 - 1},
        {"partition": 2**31},
        {"producer_epoch": True},
        {"created_at": datetime(2026, 1, 1)},  # naive on purpose
    ],
    ids=repr,
)
def test_invalid_deliveries_are_refused_before_any_backend(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(overrides))):
        DeliveredRecord(**_valid(**overrides))


def test_record_json_of_another_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="record_json"):
        DeliveredRecord(**_valid(record_json=b"{}"))


def _one_segment(directory: Path) -> Path:
    [segment] = [p for p in directory.rglob("*") if p.is_file() and p.suffix == ".jsonl"]
    return segment


@hostile(30)
@given(data=st.data())
def test_a_damaged_jsonl_segment_is_a_sink_error(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"jsonl:{Path(tmp) / 'store'}"
        items = [DeliveredRecord(**_valid(message_id=f"m{i}", sequence=i, offset=i))
                 for i in range(3)]  # fmt: skip
        with open_sink(url) as sink:
            sink.write("g", items)
        segment = _one_segment(Path(tmp))
        blob = segment.read_bytes()
        start = data.draw(st.integers(0, len(blob) - 1))
        end = data.draw(st.integers(start, min(len(blob), start + 64)))
        damaged = blob[:start] + data.draw(st.binary(max_size=64)) + blob[end:]
        segment.write_bytes(damaged)
        outcome: list[DeliveredRecord] | SinkError
        try:
            with open_sink(url) as sink:
                outcome = list(sink.records())
        except SinkError as exc:
            outcome = exc
    if isinstance(outcome, SinkError):
        assert "corrupt" in str(outcome) or "cannot" in str(outcome)
    else:  # only a change the checksum cannot see (a trailing newline...) reads back
        assert outcome == items


@pytest.mark.parametrize(
    "trailer", ["[" * 100_000 + "]" * 100_000, '{"sha256": ' + "[" * 100_000 + "]" * 100_000 + "}"]
)
def test_a_deeply_nested_segment_trailer_is_a_sink_error(trailer: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"jsonl:{Path(tmp) / 'store'}"
        with open_sink(url) as sink:
            sink.write("g", [DeliveredRecord(**_valid())])
        segment = _one_segment(Path(tmp))
        body = segment.read_bytes().rstrip(b"\n").rpartition(b"\n")[0]
        segment.write_bytes(body + b"\n" + trailer.encode() + b"\n")
        with pytest.raises(SinkError, match="corrupt"):
            open_sink(url).close()
