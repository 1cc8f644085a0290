"""Hermetic tests of the soak's arithmetic: durations, record ids, the latency histogram,
interval rows, loss and duplicate accounting, and the RSS slope."""

from __future__ import annotations

import math
import random

import pytest

from exchange.bench.stats import percentile
from exchange.soak.stats import (
    MIB,
    Accounting,
    Counters,
    LatencyHistogram,
    RssTrend,
    interval_row,
    parse_duration,
    soak_record_id,
    split_record_id,
    window_latency,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10m", 600.0), ("90s", 90.0), ("1h30m", 5400.0), ("2.5m", 150.0), ("45", 45.0),
     (" 1H ", 3600.0), ("1m30s", 90.0)],
)  # fmt: skip
def test_parse_duration_reads_units_and_bare_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "10x", "ten minutes", "1h30", "-5s", "0s", "10m 5"])
def test_parse_duration_refuses_what_is_not_a_positive_duration(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|unit"):
        parse_duration(text)


def test_record_id_carries_index_and_due_time_and_is_a_canonical_uuid() -> None:
    due = 1_796_000_000_123_456_789
    rid = soak_record_id(1_199_999, due)
    assert split_record_id(rid) == (1_199_999, due)
    assert rid == rid.lower()
    assert len(rid) == 36
    assert soak_record_id(1, due) != soak_record_id(2, due)
    with pytest.raises(ValueError, match="expected both"):
        soak_record_id(-1, due)


def test_histogram_percentiles_are_within_one_percent_of_exact() -> None:
    rng = random.Random(5)
    values = [rng.lognormvariate(3, 1) for _ in range(20_000)]
    hist = LatencyHistogram()
    for v in values:
        hist.add(v)
    assert hist.count == len(values)
    assert hist.max_ms == max(values)
    for q in (50, 90, 99, 99.9):
        assert hist.percentile(q) == pytest.approx(percentile(values, q), rel=0.011), q
    assert len(hist.buckets) < 2_000  # bounded, whatever the number of values


def test_histogram_edges_empty_tiny_negative_and_round_trip() -> None:
    hist = LatencyHistogram()
    assert math.isnan(hist.percentile(50))
    hist.add(-3.0)  # a clock step: counted, in the first bucket
    hist.add(0.001)
    hist.add(250.0)
    assert hist.percentile(50) == pytest.approx(LatencyHistogram.FLOOR_MS)
    assert hist.percentile(100) == 250.0  # capped at the exact maximum
    again = LatencyHistogram.from_json(hist.to_json())
    assert (again.count, again.max_ms, again.buckets) == (3, 250.0, hist.buckets)
    with pytest.raises(ValueError, match=r"0\.\.100"):
        hist.percentile(101)


def test_window_latency_of_an_interval() -> None:
    assert window_latency([]) == {"p50_ms": None, "p99_ms": None, "max_ms": None}
    stats = window_latency([float(v) for v in range(1, 101)])
    assert stats == {"p50_ms": 50.5, "p99_ms": pytest.approx(99.01), "max_ms": 100.0}


def test_interval_row_rates_lag_and_rss() -> None:
    before = Counters(offered=20_000, accepted=19_990, delivered=19_000)
    after = Counters(offered=40_000, accepted=39_990, delivered=37_000)
    row = interval_row(
        20.0, 10.0, before=before, after=after,
        latency={"p50_ms": 12.0, "p99_ms": 80.0, "max_ms": 95.5},
        rss={"producer": 150 * MIB, "consumer": 90 * MIB, "broker": None},
    )  # fmt: skip
    assert row.offered_per_s == 2_000
    assert row.achieved_per_s == 2_000
    assert row.consumed_per_s == 1_800
    assert row.lag == 2_990
    assert (row.p50_ms, row.p99_ms, row.max_ms) == (12.0, 80.0, 95.5)
    assert (row.producer_rss_mib, row.consumer_rss_mib, row.broker_rss_mib) == (150, 90, None)
    assert row.to_json()["broker_rss_mib"] is None
    with pytest.raises(ValueError, match="seconds"):
        interval_row(0.0, 0.0, before=before, after=after, latency={}, rss={})


def test_interval_row_without_latency_reports_none() -> None:
    zero = Counters(0, 0, 0)
    row = interval_row(10.0, 10.0, before=zero, after=Counters(10, 5, 7), latency={}, rss={})
    assert (row.p50_ms, row.p99_ms, row.max_ms) == (None, None, None)
    assert row.lag == 0  # never negative (a consumer count read after the producer's)


def _acc(**changes: int) -> Accounting:
    base = {"scheduled": 1_000, "accepted": 1_000, "failed": 0, "delivered": 1_000,
            "stored_rows": 1_000, "stored_distinct": 1_000, "consumer_duplicates": 0,
            "quarantined": 0}  # fmt: skip
    base.update(changes)
    return Accounting(**base)


def test_accounting_of_a_clean_run() -> None:
    acc = _acc()
    assert (acc.lost, acc.duplicated, acc.clean) == (0, 0, True)
    assert acc.to_json()["clean"] is True


def test_accounting_counts_lost_duplicated_and_refuses_anything_unclean() -> None:
    lost = _acc(stored_rows=997, stored_distinct=997, delivered=997)
    assert (lost.lost, lost.clean) == (3, False)
    doubled = _acc(stored_rows=1_002, consumer_duplicates=5)
    assert (doubled.lost, doubled.duplicated, doubled.clean) == (0, 7, False)
    assert not _acc(quarantined=1).clean
    assert not _acc(failed=1).clean
    # Everything accepted was stored, but the producer never sent part of the schedule.
    short = _acc(accepted=900, delivered=900, stored_rows=900, stored_distinct=900)
    assert (short.lost, short.clean) == (0, False)


def test_rss_slope_is_taken_over_the_second_half() -> None:
    # Warm-up growth in the first half (+100 MiB), then +1 MiB per minute.
    samples = [(t, int((100 if t >= 300 else t / 3) * MIB + (t - 300) / 60 * MIB * (t >= 300)))
               for t in range(0, 601, 10)]  # fmt: skip
    trend = RssTrend(tuple(samples))
    assert trend.slope_mib_per_min == pytest.approx(1.0, rel=1e-6)
    assert trend.first_mib == 0
    assert trend.peak_mib == pytest.approx(105.0)
    assert trend.last_mib == pytest.approx(105.0)
    flat = RssTrend(tuple((float(t), 80 * MIB) for t in range(0, 100, 10)))
    assert flat.slope_mib_per_min == 0


def test_rss_trend_with_too_few_samples_is_nan_and_null_in_json() -> None:
    assert math.isnan(RssTrend().first_mib)
    assert math.isnan(RssTrend(((10.0, MIB),)).slope_mib_per_min)
    assert RssTrend().to_json() == {
        "first_mib": None, "peak_mib": None, "last_mib": None, "slope_mib_per_min": None,
    }  # fmt: skip
