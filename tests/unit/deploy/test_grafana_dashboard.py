"""deploy/grafana/exchange.json charts exactly the metrics exchange/metrics.py exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from exchange.metrics import ExchangeMetrics

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "exchange.json"
_NAME = re.compile(r"\bexchange_[a-z_]+")
_SUFFIXES = ("_total", "_bucket", "_count", "_sum")


def _charted() -> set[str]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    names = set()
    for panel in doc["panels"]:
        for target in panel.get("targets", []):
            for found in _NAME.findall(target["expr"]):
                name = found
                for suffix in _SUFFIXES:
                    name = name.removesuffix(suffix)
                names.add(name)
    return names


def _exported() -> set[str]:
    registry = CollectorRegistry()
    ExchangeMetrics(registry)
    return {metric.name for metric in registry.collect()}


def test_every_charted_metric_exists_and_every_metric_is_charted() -> None:
    assert _charted() == _exported()


def test_dashboard_uses_a_datasource_variable_not_a_fixed_uid() -> None:
    text = DASHBOARD.read_text(encoding="utf-8")
    assert '"uid": "${datasource}"' in text
