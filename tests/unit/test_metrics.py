from __future__ import annotations

import socket
import urllib.request
from datetime import UTC, datetime, timedelta

from exchange.crypto.keys import SuiteId
from exchange.crypto.testing import InMemoryAgency
from exchange.metrics import ExchangeMetrics, serve_metrics


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_metrics_are_served_on_loopback() -> None:
    metrics = ExchangeMetrics()
    metrics.quarantined.labels(recipient="USA-ATF", reason="bad_signature").inc(2)
    port = _free_port()
    serve_metrics(port, metrics=metrics)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert (
        'exchange_quarantined_messages_total{reason="bad_signature",recipient="USA-ATF"} 2.0'
        in body
    )


def test_separate_registries_do_not_share_counts() -> None:
    first, second = ExchangeMetrics(), ExchangeMetrics()
    first.published.labels(sender="MEX-FGR", record_type="seizure", suite="classic").inc()
    assert (
        first.registry.get_sample_value(
            "exchange_published_records_total",
            {"sender": "MEX-FGR", "record_type": "seizure", "suite": "classic"},
        )
        == 1.0
    )
    assert (
        second.registry.get_sample_value(
            "exchange_published_records_total",
            {"sender": "MEX-FGR", "record_type": "seizure", "suite": "classic"},
        )
        is None
    )


def test_key_age_is_seconds_since_the_generation_began() -> None:
    began = datetime(2026, 1, 1, tzinfo=UTC)
    key = InMemoryAgency("USA-ATF").add_generation(SuiteId.CLASSIC, not_before=began)
    metrics = ExchangeMetrics()
    metrics.observe_key(key, now=began + timedelta(hours=2))
    age = metrics.registry.get_sample_value(
        "exchange_key_age_seconds", {"agency": "USA-ATF", "suite": "classic"}
    )
    assert age == 7200.0
