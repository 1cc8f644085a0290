"""Statistics of one benchmark run: what each role measured, and the figures derived from it.

Pure functions and dataclasses (no Kafka, no clock), so the arithmetic that turns raw
measurements into the published table is unit-tested on its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SECURE_VARIANTS",
    "VARIANTS",
    "ConsumerRun",
    "MemoryCheck",
    "PacedRun",
    "ProducerRun",
    "VariantResult",
    "json_key",
    "latencies_ms",
    "percentile",
    "rate",
    "summary_json",
    "sweep_key",
]

#: Variants in table order: the plain Avro baseline first, then every suite.
VARIANTS = ("plain", "classic", "pq-hybrid", "cnsa")
SECURE_VARIANTS = VARIANTS[1:]


def json_key(variant: str, figure: str) -> str:
    """``<variant>_<figure>`` with the variant's dashes as underscores (``pq_hybrid_e2e_ratio``).

    Raises:
        ValueError: ``variant`` is not one of :data:`VARIANTS`.
    """
    if variant not in VARIANTS:
        raise ValueError(f"got variant {variant!r}, expected one of {', '.join(VARIANTS)}")
    return f"{variant.replace('-', '_')}_{figure}"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, linear between closest ranks.

    Same definition as ``numpy.percentile``'s default, so figures compare with other tools.

    Raises:
        ValueError: ``values`` is empty or ``q`` is outside 0..100.
    """
    if not values:
        raise ValueError("got no values, expected at least one")
    if not 0 <= q <= 100:
        raise ValueError(f"got q={q}, expected 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rate(count: int, start_ns: int, end_ns: int) -> float:
    """Messages per second over ``[start_ns, end_ns]``; 0.0 for an empty or inverted span."""
    span = end_ns - start_ns
    return count * 1e9 / span if count > 0 and span > 0 else 0.0


def latencies_ms(sent_ns: Mapping[str, int], received_ns: Mapping[str, int]) -> list[float]:
    """End-to-end latency of every message seen on both sides, in milliseconds."""
    return [(received_ns[k] - sent) / 1e6 for k, sent in sent_ns.items() if k in received_ns]


@dataclass(frozen=True)
class ProducerRun:
    """What one producer process reported (times are ``time.time_ns()`` of the host).

    ``count`` records were published; the first is a warm-up sent before ``start_ns``, so
    ``timed`` (``count - 1``) records fall in ``[start_ns, end_ns]``.
    """

    count: int
    timed: int
    start_ns: int
    end_ns: int
    value_bytes: int
    peak_rss: int
    sent_ns: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProducerRun:
        return cls(
            int(data["count"]), int(data["timed"]), int(data["start_ns"]), int(data["end_ns"]),
            int(data["value_bytes"]), int(data["peak_rss"]),
            {str(k): int(v) for k, v in data.get("sent_ns", {}).items()},
        )  # fmt: skip


@dataclass(frozen=True)
class ConsumerRun:
    """What one consumer process reported; ``rss_samples`` are (records seen, RSS bytes)."""

    count: int
    first_ns: int
    last_ns: int
    peak_rss: int
    received_ns: dict[str, int] = field(default_factory=dict)
    rss_samples: tuple[tuple[int, int], ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConsumerRun:
        return cls(
            int(data["count"]), int(data["first_ns"]), int(data["last_ns"]),
            int(data["peak_rss"]),
            {str(k): int(v) for k, v in data.get("received_ns", {}).items()},
            tuple((int(n), int(r)) for n, r in data.get("rss_samples", ())),
        )  # fmt: skip


@dataclass(frozen=True)
class PacedRun:
    """One paced phase (a variant's own, or one rate of ``--sweep``): a producer offering
    ``rate`` msgs/s open loop for the run's ``--seconds``, and the consumer that joined
    before it."""

    variant: str
    rate: float
    expected: int
    producer: ProducerRun
    consumer: ConsumerRun

    @property
    def latencies(self) -> list[float]:
        return latencies_ms(self.producer.sent_ns, self.consumer.received_ns)

    @property
    def complete(self) -> bool:
        return self.consumer.count == self.producer.count == self.expected


@dataclass(frozen=True)
class VariantResult:
    """One variant's three phases: closed-loop throughput, drain, paced latency."""

    variant: str
    expected: int
    produced: ProducerRun
    consumed: ConsumerRun
    drained: ConsumerRun
    paced: PacedRun

    @property
    def producer_msgs_per_s(self) -> float:
        """Closed loop: records from the first publish until every delivery is confirmed."""
        return rate(self.produced.timed, self.produced.start_ns, self.produced.end_ns)

    @property
    def consumer_msgs_per_s(self) -> float:
        """A fresh group draining the full topic, first record to last."""
        return rate(self.drained.count, self.drained.first_ns, self.drained.last_ns)

    @property
    def e2e_msgs_per_s(self) -> float:
        """Producer and consumer at once: first timed publish until the last record is consumed."""
        return rate(self.produced.timed, self.produced.start_ns, self.consumed.last_ns)

    @property
    def latencies(self) -> list[float]:
        return self.paced.latencies

    @property
    def bytes_per_msg(self) -> float:
        return self.produced.value_bytes / self.produced.count if self.produced.count else 0.0

    @property
    def complete(self) -> bool:
        """Whether every phase delivered every record it produced."""
        return (
            self.consumed.count == self.drained.count == self.produced.count == self.expected
            and self.paced.complete
        )

    def figures(self) -> dict[str, float]:
        """The table row, keyed by figure name (without the variant prefix)."""
        lat = self.latencies or [math.nan]
        return {
            "producer_msgs_per_s": self.producer_msgs_per_s,
            "consumer_msgs_per_s": self.consumer_msgs_per_s,
            "e2e_msgs_per_s": self.e2e_msgs_per_s,
            "latency_p50_ms": percentile(lat, 50),
            "latency_p99_ms": percentile(lat, 99),
            "producer_peak_rss_mib": self.peak_rss("producer") / 2**20,
            "consumer_peak_rss_mib": self.peak_rss("consumer") / 2**20,
            "bytes_per_msg": self.bytes_per_msg,
        }

    def peak_rss(self, role: str) -> int:
        """Peak RSS of a role over its processes (each phase runs in its own process)."""
        if role == "producer":
            return max(self.produced.peak_rss, self.paced.producer.peak_rss)
        return max(self.consumed.peak_rss, self.drained.peak_rss, self.paced.consumer.peak_rss)


@dataclass(frozen=True)
class MemoryCheck:
    """Consumer RSS over a long run: is it flat once warm?"""

    variant: str
    records: int
    consumer: ConsumerRun

    @property
    def growth_mib(self) -> float:
        """RSS at the end minus RSS after the first tenth of the run (the warm-up)."""
        samples = self.consumer.rss_samples
        if not samples:
            return math.nan
        warm = next((r for n, r in samples if n >= self.records // 10), samples[0][1])
        return (samples[-1][1] - warm) / 2**20


def sweep_key(variant: str, rate: float, figure: str) -> str:
    """``<variant>_sweep_<rate>_<figure>``, e.g. ``classic_sweep_2000_latency_p99_ms``."""
    return json_key(variant, f"sweep_{rate:g}_{figure}")


def summary_json(
    results: Sequence[VariantResult],
    *,
    settings: Mapping[str, Any],
    memory: MemoryCheck | None,
    sweep: Sequence[PacedRun] = (),
) -> dict[str, Any]:
    """The ``--json`` object: settings, every figure as ``<variant>_<figure>``, the ratios.

    Ratios are secure / plain for throughput (higher is better, 1.0 = no cost); keys are
    ``<suite>_e2e_ratio``, ``<suite>_producer_ratio`` and ``<suite>_consumer_ratio`` with the
    suite's dashes as underscores (``classic``, ``pq_hybrid``, ``cnsa``). With a sweep,
    ``sweep_rates`` lists the offered rates and :func:`sweep_key` names each latency figure.

    Raises:
        ValueError: ``results`` has no ``plain`` baseline.
    """
    by_name = {r.variant: r for r in results}
    if "plain" not in by_name:
        raise ValueError("got no plain baseline, expected a 'plain' result")
    out: dict[str, Any] = dict(settings)
    base = by_name["plain"].figures()
    for r in results:
        figures = r.figures()
        out.update({json_key(r.variant, k): _finite(v) for k, v in figures.items()})
        out[json_key(r.variant, "delivered")] = r.consumed.count
        out[json_key(r.variant, "expected")] = r.expected
        out[json_key(r.variant, "paced_delivered")] = r.paced.consumer.count
        out[json_key(r.variant, "complete")] = r.complete
        if r.variant != "plain":
            for what in ("e2e", "producer", "consumer"):
                denominator = base[f"{what}_msgs_per_s"]
                ratio = figures[f"{what}_msgs_per_s"] / denominator if denominator else math.nan
                out[json_key(r.variant, f"{what}_ratio")] = _finite(ratio)
    if sweep:
        out["sweep_rates"] = sorted({run.rate for run in sweep})
    for run in sweep:
        lat = run.latencies or [math.nan]
        out[sweep_key(run.variant, run.rate, "latency_p50_ms")] = _finite(percentile(lat, 50))
        out[sweep_key(run.variant, run.rate, "latency_p99_ms")] = _finite(percentile(lat, 99))
        out[sweep_key(run.variant, run.rate, "complete")] = run.complete
    if memory is not None:
        out["memory_variant"] = memory.variant
        out["memory_records"] = memory.records
        out["memory_consumer_delivered"] = memory.consumer.count
        out["memory_rss_growth_mib"] = _finite(memory.growth_mib)
        out["memory_rss_samples_mib"] = [
            [n, round(r / 2**20, 1)] for n, r in memory.consumer.rss_samples
        ]
    return out


def _finite(value: float) -> float | None:
    """JSON has no NaN: a figure that could not be measured is null."""
    return None if math.isnan(value) else round(value, 3)
