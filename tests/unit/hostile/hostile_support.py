"""Shared pieces of the hostile-input tests (docs/hostile-input.md).

Every property here runs derandomized and without the example database, so CI sees the same
examples on every run; the per-example deadline is the "never hangs" bound.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from datetime import timedelta

from hypothesis import HealthCheck, settings

__all__ = ["hostile", "peak_kib", "varint"]


def hostile(max_examples: int, *, deadline_s: float = 2.0) -> settings:
    """Settings of one hostile-input property: deterministic, bounded time per example."""
    return settings(
        max_examples=max_examples,
        deadline=timedelta(seconds=deadline_s),
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def peak_kib(fn: Callable[[], object]) -> float:
    """Peak traced allocation of ``fn()``, in KiB (what a hostile length could make us hold)."""
    tracemalloc.start()
    try:
        fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak / 1024


def varint(value: int) -> bytes:
    """The Avro (zig-zag) varint of ``value``, for hand-made hostile length prefixes."""
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
