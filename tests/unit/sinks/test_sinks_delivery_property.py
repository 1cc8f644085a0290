"""Property: whatever Kafka does to a delivery sequence (reorder, repeat, split into batches,
restart the consumer), every message id ends up stored exactly once."""

from __future__ import annotations

import tempfile
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.sinks import open_sink
from tests.unit.sinks.sink_data import make_stream

STREAM = make_stream(40, producers=3, partitions=3)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[int], list[int], int]:
    """Indices into STREAM in any order with repeats, cut points into batches, a reopen point."""
    order = draw(st.lists(st.integers(0, len(STREAM) - 1), min_size=1, max_size=120))
    cuts = sorted(set(draw(st.lists(st.integers(1, len(order)), max_size=12))))
    reopen_after = draw(st.integers(0, len(cuts)))
    return order, cuts, reopen_after


@pytest.mark.parametrize("scheme", ["sqlite", "jsonl"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=deliveries())
def test_any_interleaving_and_duplication_stores_each_message_once(
    scheme: str, plan: tuple[list[int], list[int], int]
) -> None:
    order, cuts, reopen_after = plan
    bounds = [0, *cuts, len(order)]
    batches = [[STREAM[i] for i in order[a:b]] for a, b in pairwise(bounds)]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"{scheme}:{Path(tmp) / 'store'}"
        written = duplicates = 0
        sink = open_sink(url)
        try:
            for n, batch in enumerate(batches):
                if n == reopen_after:  # a consumer restart in the middle of the stream
                    sink.close()
                    sink = open_sink(url)
                result = sink.write("g", batch)
                written += result.written
                duplicates += result.duplicates
                assert result.rejected == 0  # all reordering here is within the window
            stored = [r.message_id for r in sink.records()]
        finally:
            sink.close()
    delivered = {STREAM[i].message_id for i in order}
    assert sorted(stored) == sorted(delivered)
    assert len(stored) == len(set(stored))
    assert (written, duplicates) == (len(delivered), len(order) - len(delivered))
