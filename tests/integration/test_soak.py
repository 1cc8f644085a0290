"""``exchange soak`` for a short run against the session's broker: the real path (paced
SecureProducer, SecureConsumer into SQLite, both audit logs with receipts and witnesses,
the auditor at the end) loses and duplicates nothing, and every figure is there and sane.
Speed is never asserted: the machine may be loaded."""

from __future__ import annotations

import json

import pytest

from exchange.cli import main

RATE, SECONDS, INTERVAL = 300, 12, 3
RECORDS = RATE * SECONDS


def test_soak_short_run_is_clean_and_reports_every_figure(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EXCHANGE_BOOTSTRAP", kafka_bootstrap)
    code = main([
        "soak", "--rate", str(RATE), "--duration", f"{SECONDS}s", "--interval", f"{INTERVAL}s",
        "--json",
    ])  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["errors"] == []
    assert code == 0
    assert summary["ok"] is True
    acc = summary["accounting"]
    assert acc["scheduled"] == acc["accepted"] == acc["delivered"] == RECORDS
    assert acc["stored_rows"] == acc["stored_distinct"] == RECORDS
    assert (acc["lost"], acc["duplicated"], acc["quarantined"], acc["failed"]) == (0, 0, 0, 0)

    rows = summary["intervals"]
    assert len(rows) >= SECONDS // INTERVAL
    assert [r["t_s"] for r in rows] == [INTERVAL * (i + 1) for i in range(len(rows))]
    # Everything offered was offered within the schedule, and consumed by the end.
    assert sum(r["offered_per_s"] * INTERVAL for r in rows) == pytest.approx(RECORDS, abs=1)
    assert sum(r["consumed_per_s"] * INTERVAL for r in rows) == pytest.approx(RECORDS, abs=1)
    assert rows[-1]["lag"] == 0
    loaded = rows[: SECONDS // INTERVAL]
    assert all(r["producer_rss_mib"] > 0 and r["consumer_rss_mib"] > 0 for r in loaded)
    assert any(r["p99_ms"] is not None for r in loaded)

    latency = summary["latency_ms"]
    assert latency["count"] == RECORDS
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    for role in ("producer", "consumer"):
        trend = summary["rss_mib"][role]
        assert 0 < trend["first_mib"] <= trend["peak_mib"], role

    audit = summary["audit"]
    assert audit["ok"] is True, audit["findings"]
    assert audit["envelopes"] == RECORDS
    assert audit["receipts_logged"] == RECORDS
    # The sender logs each publish and each receipt; the recipient each delivery.
    assert audit["log_entries"] == {"MEX-FGR": 2 * RECORDS, "USA-ATF": RECORDS}
    assert audit["cosignatures"] > 0
    assert audit["peak_rss_mib"] > 0
