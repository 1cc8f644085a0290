"""The soak's arithmetic: durations, latency histograms, interval rows, accounting, RSS trends.

Pure functions and dataclasses (no Kafka, no clock, no processes), so every figure the soak
reports is unit-tested on its own.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from exchange.bench.stats import percentile

__all__ = [
    "Accounting",
    "Counters",
    "IntervalRow",
    "LatencyHistogram",
    "RssTrend",
    "interval_row",
    "parse_duration",
    "soak_record_id",
    "split_record_id",
    "window_latency",
]

MIB = 2**20
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([hms]?)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "": 1.0}


def parse_duration(text: str) -> float:
    """Seconds in ``10m``, ``90s``, ``1h30m``, ``2.5m`` or a bare number of seconds.

    Raises:
        ValueError: not such a duration, or zero.
    """
    cleaned = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"got {text!r}, expected a duration such as 10m, 90s or 1h30m")
    if sum(1 for _, unit in parts if not unit) > (1 if len(parts) == 1 else 0):
        raise ValueError(f"got {text!r}, expected a unit (h, m, s) on every part")
    seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"got {text!r}, expected a duration above zero")
    return seconds


def soak_record_id(index: int, due_ns: int) -> str:
    """Record id of soak message ``index``, scheduled at wall time ``due_ns``: the due time in
    the high 64 bits and the index in the low 64, so a consumer in another process derives
    the latency and the message's place in the run from the record alone (no side map)."""
    if not (0 <= index < 2**64 and 0 <= due_ns < 2**64):
        raise ValueError(f"got index {index}, due {due_ns}, expected both in 0..2**64-1")
    return str(uuid.UUID(int=(due_ns << 64) | index))


def split_record_id(record_id: str) -> tuple[int, int]:
    """``(index, due_ns)`` of a :func:`soak_record_id`.

    Raises:
        ValueError: ``record_id`` is not a UUID.
    """
    value = uuid.UUID(record_id).int
    return value & (2**64 - 1), value >> 64


class LatencyHistogram:
    """Latencies in log-spaced buckets 1 % wide: constant memory over any run length.

    Percentiles are exact to within one bucket (1 %); the maximum is exact. Latencies below
    ``FLOOR_MS`` (including a negative one from clock steps) count in the first bucket.
    """

    FLOOR_MS = 0.01
    _GROWTH = math.log(1.01)

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.max_ms = math.nan

    def add(self, ms: float) -> None:
        index = 0 if ms <= self.FLOOR_MS else 1 + int(math.log(ms / self.FLOOR_MS) / self._GROWTH)
        self.buckets[index] = self.buckets.get(index, 0) + 1
        self.count += 1
        self.max_ms = ms if math.isnan(self.max_ms) else max(self.max_ms, ms)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100): the upper edge of the bucket it falls in, capped
        at the maximum; NaN when empty.

        Raises:
            ValueError: ``q`` is outside 0..100.
        """
        if not 0 <= q <= 100:
            raise ValueError(f"got q={q}, expected 0..100")
        if not self.count:
            return math.nan
        rank = max(1, math.ceil(self.count * q / 100))
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                return min(self.FLOOR_MS * math.exp(index * self._GROWTH), self.max_ms)
        return self.max_ms  # unreachable: the counts add up to count

    def to_json(self) -> dict[str, Any]:
        return {"buckets": {str(k): v for k, v in self.buckets.items()}, "max_ms": self.max_ms}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LatencyHistogram:
        out = cls()
        out.buckets = {int(k): int(v) for k, v in data.get("buckets", {}).items()}
        out.count = sum(out.buckets.values())
        out.max_ms = float(data.get("max_ms", math.nan))
        return out


def window_latency(values: Sequence[float]) -> dict[str, float | None]:
    """p50, p99 and max (ms) of one interval's latencies; None for an empty interval."""
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "p50_ms": percentile(values, 50),
        "p99_ms": percentile(values, 99),
        "max_ms": max(values),
    }


@dataclass(frozen=True)
class IntervalRow:
    """One reporting interval, ending ``t_s`` seconds after the schedule began.

    Rates are per second over the interval; ``lag`` is records the broker accepted that
    the consumer has not stored yet (the group's lag: one producer on fresh topics).
    RSS figures are MiB, None for a process that is not there (or not local).
    """

    t_s: float
    offered_per_s: float
    achieved_per_s: float
    consumed_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    producer_rss_mib: float | None
    consumer_rss_mib: float | None
    broker_rss_mib: float | None
    lag: int

    def to_json(self) -> dict[str, Any]:
        return {k: _round(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Counters:
    """Cumulative counts at one instant: scheduled, acknowledged by the broker, stored."""

    offered: int
    accepted: int
    delivered: int


def interval_row(
    t_s: float,
    seconds: float,
    *,
    before: Counters,
    after: Counters,
    latency: Mapping[str, float | None],
    rss: Mapping[str, int | None],
) -> IntervalRow:
    """The row of an interval of ``seconds`` between two counter snapshots.

    Raises:
        ValueError: ``seconds`` is not positive.
    """
    if seconds <= 0:
        raise ValueError(f"got seconds={seconds}, expected > 0")

    def mib(role: str) -> float | None:
        value = rss.get(role)
        return None if value is None else value / MIB

    return IntervalRow(
        t_s=t_s,
        offered_per_s=(after.offered - before.offered) / seconds,
        achieved_per_s=(after.accepted - before.accepted) / seconds,
        consumed_per_s=(after.delivered - before.delivered) / seconds,
        p50_ms=latency.get("p50_ms"),
        p99_ms=latency.get("p99_ms"),
        max_ms=latency.get("max_ms"),
        producer_rss_mib=mib("producer"),
        consumer_rss_mib=mib("consumer"),
        broker_rss_mib=mib("broker"),
        lag=max(0, after.accepted - after.delivered),
    )


@dataclass(frozen=True)
class Accounting:
    """Where every record went.

    Attributes:
        scheduled: records the schedule offered.
        accepted: records the broker acknowledged to the producer.
        failed: records the producer could not publish (refused or not acknowledged).
        delivered: records the consumer stored (its handler ran once per stored record).
        stored_rows: rows of this run in the sink.
        stored_distinct: distinct record ids among them.
        consumer_duplicates: redeliveries the consumer recognized and did not store again.
        quarantined: envelopes the consumer refused.
    """

    scheduled: int
    accepted: int
    failed: int
    delivered: int
    stored_rows: int
    stored_distinct: int
    consumer_duplicates: int
    quarantined: int

    @property
    def lost(self) -> int:
        """Accepted by the broker but never stored (a negative count would be stored records
        nobody sent; it is reported as is)."""
        return self.accepted - self.stored_distinct

    @property
    def duplicated(self) -> int:
        """Extra rows of one record id in the sink, plus redeliveries the consumer saw."""
        return self.stored_rows - self.stored_distinct + self.consumer_duplicates

    @property
    def clean(self) -> bool:
        """Nothing lost, duplicated, quarantined or failed, and everything scheduled sent."""
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.quarantined == 0
            and self.failed == 0
            and self.accepted == self.scheduled
        )

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out.update(lost=self.lost, duplicated=self.duplicated, clean=self.clean)
        return out


@dataclass(frozen=True)
class RssTrend:
    """One role's RSS samples over the run: ``(seconds, bytes)``."""

    samples: tuple[tuple[float, int], ...] = field(default_factory=tuple)

    @property
    def first_mib(self) -> float:
        return self.samples[0][1] / MIB if self.samples else math.nan

    @property
    def peak_mib(self) -> float:
        return max(r for _, r in self.samples) / MIB if self.samples else math.nan

    @property
    def last_mib(self) -> float:
        return self.samples[-1][1] / MIB if self.samples else math.nan

    @property
    def slope_mib_per_min(self) -> float:
        """Least-squares slope over the second half of the run (after the warm-up): about 0
        for a flat process; NaN with fewer than two samples there."""
        if not self.samples:
            return math.nan
        middle = (self.samples[0][0] + self.samples[-1][0]) / 2
        half = [(t, r / MIB) for t, r in self.samples if t >= middle]
        if len(half) < 2:
            return math.nan
        mean_t = sum(t for t, _ in half) / len(half)
        mean_r = sum(r for _, r in half) / len(half)
        spread = sum((t - mean_t) ** 2 for t, _ in half)
        if spread == 0:
            return math.nan
        slope_per_s = sum((t - mean_t) * (r - mean_r) for t, r in half) / spread
        return slope_per_s * 60

    def to_json(self) -> dict[str, float | None]:
        return {
            "first_mib": _round(self.first_mib),
            "peak_mib": _round(self.peak_mib),
            "last_mib": _round(self.last_mib),
            "slope_mib_per_min": _round(self.slope_mib_per_min),
        }


def _round(value: object) -> Any:
    """JSON has no NaN: a figure that could not be measured is null; floats to 3 places."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 3)
    return value
