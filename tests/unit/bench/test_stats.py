"""Hermetic tests of the benchmark's arithmetic and report: percentiles, rates, ratios, the
``--json`` keys and the Markdown section written into docs/benchmarks.md."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from exchange.bench.report import (
    DOCS_BEGIN,
    DOCS_END,
    markdown_section,
    rich_table,
    sweep_table,
    update_docs,
)
from exchange.bench.stats import (
    ConsumerRun,
    MemoryCheck,
    PacedRun,
    ProducerRun,
    VariantResult,
    json_key,
    latencies_ms,
    percentile,
    rate,
    summary_json,
    sweep_key,
)

S = 1_000_000_000  # one second in ns


def _result(
    variant: str, *, seconds: float, paced_lat_ms: tuple[float, ...] = (1.0, 3.0)
) -> VariantResult:
    """1,000 records produced in ``seconds`` and consumed 0.5 s later; drained in 0.5 s."""
    start = 100 * S
    end = start + int(seconds * S)
    produced = ProducerRun(1_001, 1_000, start, end, 2_002_000, 50 * 2**20)
    consumed = ConsumerRun(1_001, start + 1, end + S // 2, 60 * 2**20)
    drained = ConsumerRun(1_001, 0, S // 2, 70 * 2**20)
    sent = {f"r{i}": 10 * S for i in range(len(paced_lat_ms))}
    received = {f"r{i}": 10 * S + int(ms * 1e6) for i, ms in enumerate(paced_lat_ms)}
    paced_p = ProducerRun(len(sent), len(sent) - 1, 0, 1, 0, 80 * 2**20, sent)
    paced_c = ConsumerRun(len(sent), 0, 1, 40 * 2**20, received)
    paced = PacedRun(variant, 1_000.0, len(sent), paced_p, paced_c)
    return VariantResult(variant, 1_001, produced, consumed, drained, paced)


SETTINGS = {"command": "exchange bench --quick", "records": 1_001, "rate": 1_000.0,
            "seconds": 2.0, "pool": 50, "partitions": 3, "audit": False,
            "variants": ["plain", "classic", "pq-hybrid", "cnsa"]}  # fmt: skip


def _summary() -> dict[str, object]:
    results = [
        _result("plain", seconds=0.5),
        _result("classic", seconds=1.5),
        _result("pq-hybrid", seconds=2.5),
        _result("cnsa", seconds=2.5, paced_lat_ms=(5.0,)),
    ]
    return summary_json(results, settings=SETTINGS, memory=None)


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # unsorted input


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], -1), ([1.0], 100.5)])
def test_percentile_rejects_empty_input_and_bad_q(values: list[float], q: float) -> None:
    with pytest.raises(ValueError, match="expected"):
        percentile(values, q)


def test_rate_is_count_per_second_and_zero_for_an_empty_span() -> None:
    assert rate(500, 0, S // 2) == pytest.approx(1_000.0)
    assert rate(500, S, S) == 0.0
    assert rate(500, 2 * S, S) == 0.0
    assert rate(0, 0, S) == 0.0


def test_latencies_join_on_message_id_and_skip_unreceived() -> None:
    sent = {"a": 0, "b": 1_000_000, "lost": 0}
    received = {"a": 2_000_000, "b": 4_000_000, "stray": 9}
    assert sorted(latencies_ms(sent, received)) == [2.0, 3.0]


def test_json_key_uses_underscores_and_rejects_unknown_variants() -> None:
    assert json_key("pq-hybrid", "e2e_ratio") == "pq_hybrid_e2e_ratio"
    with pytest.raises(ValueError, match="expected one of"):
        json_key("rot13", "e2e_ratio")


def test_summary_has_the_documented_keys_and_ratios() -> None:
    summary = _summary()
    # The keys.
    assert summary["plain_e2e_msgs_per_s"] == pytest.approx(1_000 / 1.0)
    assert summary["classic_e2e_ratio"] == pytest.approx((1_000 / 2.0) / 1_000, abs=1e-3)
    assert summary["pq_hybrid_e2e_ratio"] == pytest.approx((1_000 / 3.0) / 1_000, abs=1e-3)
    assert summary["cnsa_e2e_ratio"] == summary["pq_hybrid_e2e_ratio"]
    assert summary["classic_producer_ratio"] == pytest.approx(0.5 / 1.5, abs=1e-3)
    assert summary["classic_consumer_ratio"] == 1.0
    assert "plain_e2e_ratio" not in summary  # the baseline has no ratio to itself
    assert summary["plain_producer_msgs_per_s"] == pytest.approx(2_000.0)
    assert summary["plain_consumer_msgs_per_s"] == pytest.approx(2_002.0)
    assert summary["plain_latency_p50_ms"] == pytest.approx(2.0)
    assert summary["cnsa_latency_p99_ms"] == pytest.approx(5.0)
    assert summary["plain_bytes_per_msg"] == pytest.approx(2_000.0)
    assert summary["plain_producer_peak_rss_mib"] == 80.0  # max over the role's processes
    assert summary["plain_consumer_peak_rss_mib"] == 70.0
    assert summary["classic_delivered"] == summary["classic_expected"] == 1_001
    assert summary["classic_complete"] is True
    assert summary["audit"] is False


def test_incomplete_runs_are_flagged() -> None:
    good = _result("classic", seconds=1.0)
    lost = ConsumerRun(1_000, 0, S, 0)
    assert good.complete
    assert not VariantResult(
        "classic", 1_001, good.produced, lost, good.drained, good.paced
    ).complete


def test_summary_needs_the_plain_baseline() -> None:
    with pytest.raises(ValueError, match="plain"):
        summary_json([_result("classic", seconds=1.0)], settings=SETTINGS, memory=None)


def test_unmeasured_latency_is_null_not_nan() -> None:
    summary = summary_json(
        [_result("plain", seconds=1.0, paced_lat_ms=())], settings=SETTINGS, memory=None
    )
    assert summary["plain_latency_p99_ms"] is None


def test_memory_growth_is_measured_after_the_warm_up_tenth() -> None:
    samples = tuple((n, (100 + (20 if n < 1_000 else 0) + n // 1_000) * 2**20)
                    for n in range(500, 10_001, 500))  # fmt: skip
    check = MemoryCheck("classic", 10_000, ConsumerRun(10_000, 0, S, 0, rss_samples=samples))
    assert check.growth_mib == pytest.approx(10.0 - 1.0)
    assert math.isnan(MemoryCheck("classic", 10, ConsumerRun(10, 0, S, 0)).growth_mib)
    summary = summary_json([_result("plain", seconds=1.0)], settings=SETTINGS, memory=check)
    assert summary["memory_rss_growth_mib"] == pytest.approx(9.0)
    assert summary["memory_rss_samples_mib"][0] == [500, 120.0]


def test_markdown_section_replaces_only_its_own_part(tmp_path: Path) -> None:
    env = {"date": "2026-11-28 04:00 UTC", "machine": "test box", "versions": "Python 3.11"}
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nhand-written intro\n")
    update_docs(docs, markdown_section(_summary(), env))
    first = docs.read_text()
    assert first.startswith("# Benchmarks\n\nhand-written intro\n")
    assert (
        first.count(DOCS_BEGIN.format(tag="main")) == first.count(DOCS_END.format(tag="main")) == 1
    )
    assert "| end-to-end ratio to plain | - | 0.50 | 0.33 | 0.33 |" in first
    assert "`exchange bench --quick`" in first
    docs.write_text(first + "\nhand-written analysis\n")
    update_docs(docs, markdown_section(_summary(), {**env, "machine": "other box"}))
    second = docs.read_text()
    assert "other box" in second
    assert "test box" not in second
    assert second.count(DOCS_BEGIN.format(tag="main")) == 1
    # Another tag gets its own section and leaves this one alone.
    update_docs(docs, markdown_section(_summary(), env, "slow"), "slow")
    third = docs.read_text()
    assert third.count(DOCS_BEGIN.format(tag="slow")) == 1
    assert third.count(DOCS_BEGIN.format(tag="main")) == 1
    assert "other box" in third
    assert second.endswith("\nhand-written analysis\n")


def test_rich_table_has_a_column_per_variant() -> None:
    table = rich_table(_summary())
    assert [c.header for c in table.columns] == ["figure", "plain", "classic", "pq-hybrid", "cnsa"]
    assert table.row_count == 11


ENV = {"date": "2026-11-28 04:00 UTC", "machine": "test box", "versions": "Python 3.11"}


def _paced(variant: str, rate: float, lat_ms: tuple[float, ...], *, lost: int = 0) -> PacedRun:
    sent = {f"{variant}{i}": 10 * S for i in range(len(lat_ms))}
    received = {
        f"{variant}{i}": 10 * S + int(ms * 1e6) for i, ms in enumerate(lat_ms[: len(lat_ms) - lost])
    }
    producer = ProducerRun(len(sent), len(sent) - 1, 0, 1, 0, 80 * 2**20, sent)
    consumer = ConsumerRun(len(received), 0, 1, 40 * 2**20, received)
    return PacedRun(variant, rate, len(sent), producer, consumer)


def test_sweep_reports_latency_per_offered_rate_and_variant() -> None:
    results = [_result("plain", seconds=0.5), _result("classic", seconds=1.5)]
    sweep = [
        _paced("plain", 500.0, (1.0, 2.0, 3.0)),
        _paced("classic", 500.0, (10.0, 20.0, 30.0)),
        _paced("plain", 2_000.0, (4.0, 4.0)),
        _paced("classic", 2_000.0, (100.0, 300.0), lost=1),
    ]
    settings = {**SETTINGS, "variants": ["plain", "classic"]}
    summary = summary_json(results, settings=settings, memory=None, sweep=sweep)
    assert summary["sweep_rates"] == [500.0, 2_000.0]
    assert summary[sweep_key("classic", 500.0, "latency_p50_ms")] == pytest.approx(20.0)
    assert summary["classic_sweep_500_latency_p99_ms"] == pytest.approx(29.8)
    assert summary[sweep_key("plain", 2_000.0, "complete")] is True
    assert summary[sweep_key("classic", 2_000.0, "complete")] is False  # one record missing
    assert summary[sweep_key("classic", 2_000.0, "latency_p99_ms")] == pytest.approx(100.0)
    section = markdown_section(summary, ENV)
    assert "| offered msgs/s | plain | classic |" in section
    assert "| 500 | 2.0 / 3.0 | 20.0 / 29.8 |" in section
    assert "| 2,000 | 4.0 / 4.0 | 100.0 / 100.0 |" in section
    table = sweep_table(summary)
    assert table is not None
    assert [c.header for c in table.columns] == ["offered msgs/s", "plain", "classic"]


def test_no_sweep_no_sweep_table() -> None:
    summary = _summary()
    assert "sweep_rates" not in summary
    assert sweep_table(summary) is None
    assert "offered msgs/s" not in markdown_section(summary, ENV)
