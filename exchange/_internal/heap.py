"""Garbage-collector settings for long-running streaming processes. Unstable API.

A consumer holds a whole polled batch (hundreds of validated records, each a tree of
pydantic models, plus envelopes and dataclasses) while it handles it, and allocates that many
containers again for the next one. With CPython's default thresholds (700, 10, 10) the young
generation is collected every 700 allocations, so a batch's objects are traversed again and
again while they survive into the older generations, and every full collection also walks
the whole start-up heap (modules, classes, schemas, enums) that never becomes garbage.
Measured on the secure consumer (docs/benchmarks.md): about a tenth of its time went there.

The remedy is the one large Python services use: after start-up, collect once and
:func:`gc.freeze` what is left (the permanent heap is no longer traversed), and collect the
young generation ten times less often. Cycles are still collected; only less often, so
memory stays bounded (the benchmark's 100,000-record RSS check runs with these settings).
Only processes call this (the CLI commands and benchmark workers), never library classes: the
collector is process-wide state that the embedding application owns.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "settle_heap_for_streaming"]

#: Allocations between young-generation collections (CPython's default is 700).
YOUNG_THRESHOLD = 7_000


def settle_heap_for_streaming() -> None:
    """Freeze the start-up heap and collect the young generation less often (see above).

    Call it once, when the process has built its clients and is about to stream.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
