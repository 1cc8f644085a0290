"""``exchange bench --quick --sweep`` against the session's broker: every variant delivers
every record in every phase and the JSON object carries the documented keys. Speed is never
asserted."""

from __future__ import annotations

import json

import pytest

from exchange.bench.stats import SECURE_VARIANTS, VARIANTS, json_key, sweep_key
from exchange.cli import main


def test_bench_quick_delivers_every_record_in_every_variant(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EXCHANGE_BOOTSTRAP", kafka_bootstrap)
    code = main(
        ["bench", "--quick", "--records", "300", "--rate", "200", "--sweep", "300", "--json"]
    )
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert summary["variants"] == list(VARIANTS)
    assert summary["audit"] is False
    assert summary["records"] == 300
    assert summary["sweep_rates"] == [300]
    assert summary["plain_e2e_msgs_per_s"] > 0
    for variant in VARIANTS:
        assert summary[json_key(variant, "delivered")] == 300, variant
        assert summary[json_key(variant, "paced_delivered")] == 400, variant  # 200/s x 2 s
        assert summary[json_key(variant, "complete")] is True, variant
        assert summary[json_key(variant, "latency_p99_ms")] is not None, variant
        assert summary[json_key(variant, "bytes_per_msg")] > 0, variant
        assert summary[sweep_key(variant, 300, "complete")] is True, variant  # 300/s x 2 s
        assert summary[sweep_key(variant, 300, "latency_p99_ms")] is not None, variant
    for suite in SECURE_VARIANTS:
        assert summary[json_key(suite, "e2e_ratio")] > 0, suite
    assert {"classic_e2e_ratio", "pq_hybrid_e2e_ratio", "cnsa_e2e_ratio"} <= summary.keys()
    # An envelope is larger than the plain record it carries (header, wraps, signature).
    assert summary["classic_bytes_per_msg"] > summary["plain_bytes_per_msg"]
