"""The streaming processes' collector settings (exchange/_internal/heap.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from exchange._internal.heap import YOUNG_THRESHOLD, settle_heap_for_streaming


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_start_up_heap_is_frozen_and_young_collections_are_rarer() -> None:
    _, older, oldest = gc.get_threshold()
    survivor = [object() for _ in range(3)]  # a start-up object that is never garbage
    settle_heap_for_streaming()
    assert gc.get_freeze_count() > len(survivor)
    assert gc.get_threshold() == (YOUNG_THRESHOLD, older, oldest)
    assert YOUNG_THRESHOLD > 700  # CPython's default


@pytest.mark.usefixtures("restored_collector")
def test_cycles_are_still_collected_after_settling() -> None:
    settle_heap_for_streaming()

    class Node:
        peer: object

    a, b = Node(), Node()
    a.peer, b.peer = b, a
    del a, b
    assert gc.collect() >= 2  # the cycle made after settling is found and freed
