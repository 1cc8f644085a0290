"""Hermetic tests of the soak's presentation: the ``--json`` object, the Markdown section
written between the ``exchange soak`` markers, and the operator's per-interval line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from exchange.audit import Finding, FindingKind
from exchange.soak.audit import AuditOutcome
from exchange.soak.report import (
    DOCS_BEGIN,
    DOCS_END,
    DOCS_ROWS,
    markdown_section,
    row_line,
    summary_json,
    summary_tables,
    update_docs,
)
from exchange.soak.runner import SoakPlan, SoakRun, shown_sink, sink_url
from exchange.soak.stats import MIB, Accounting, IntervalRow, LatencyHistogram, RssTrend

ENV = {"date": "2026-11-28 05:00 UTC", "machine": "test machine", "versions": "test versions"}


def _row(t: float) -> IntervalRow:
    return IntervalRow(t, 2_000.0, 1_999.5, 1_990.0, 12.5, 80.25, 120.0, 150.0, 90.0, 400.0, 42)


def _run(intervals: int = 6, *, lost: int = 0) -> SoakRun:
    work = Path("soak-work")  # never touched: the run is built in memory
    plan = SoakPlan(
        bootstrap="127.0.0.1:1", suite="classic", rate=2_000.0, duration=60.0, interval=10.0,
        audit=True, sink=f"sqlite:{work / 'x.db'}", workdir=work,
    )  # fmt: skip
    hist = LatencyHistogram()
    for ms in (10.0, 20.0, 30.0, 400.0):
        hist.add(ms)
    accounting = Accounting(120_000, 120_000, 0, 120_000 - lost, 120_000 - lost,
                            120_000 - lost, 0, 0)  # fmt: skip
    rss = {role: RssTrend(((10.0, 100 * MIB), (40.0, 100 * MIB), (60.0, 101 * MIB)))
           for role in ("producer", "consumer", "broker")}  # fmt: skip
    return SoakRun(
        plan, "soakabc.", [_row(10.0 * (i + 1)) for i in range(intervals)], accounting, hist,
        rss, {"producer": 160 * MIB, "consumer": 95 * MIB, "broker": None}, 60.5,
    )  # fmt: skip


def _audit(*, findings: int = 0) -> AuditOutcome:
    return AuditOutcome(
        receipts_logged=120_000, receipts_refused=0, cosignatures=12, envelopes=120_000,
        log_entries={"MEX-FGR": 240_000, "USA-ATF": 120_000}, seconds=42.0, peak_rss_mib=1_234.4,
        findings=[Finding(FindingKind.NOT_IN_LOG, "t[0]@1", "missing")] * findings,
    )  # fmt: skip


SETTINGS = {"command": "exchange soak --duration 60s", "rate": 2_000.0, "duration_s": 60.0,
            "interval_s": 10.0, "suite": "classic", "audit_enabled": True, "sink": "sqlite",
            "partitions": 3, "records": 120_000}  # fmt: skip


def _summary(**kwargs: Any) -> dict[str, Any]:
    audit = kwargs.pop("audit", _audit())
    return summary_json(_run(**kwargs), audit, settings=SETTINGS)


def test_summary_json_carries_verdict_accounting_latency_rss_rows_and_audit() -> None:
    summary = _summary()
    assert summary["ok"] is True
    assert summary["accounting"]["lost"] == 0
    assert summary["accounting"]["stored_distinct"] == 120_000
    assert summary["delivered_msgs_per_s"] == pytest.approx(120_000 / 60.5, abs=0.001)
    assert summary["latency_ms"]["count"] == 4
    assert summary["latency_ms"]["max"] == 400.0
    assert summary["rss_mib"]["consumer"]["slope_mib_per_min"] == pytest.approx(3.0)  # 1 MiB/20 s
    assert summary["peak_rss_mib"] == {"producer": 160.0, "consumer": 95.0, "broker": None}
    assert len(summary["intervals"]) == 6
    assert summary["intervals"][0]["lag"] == 42
    assert summary["audit"]["ok"] is True
    assert summary["command"] == "exchange soak --duration 60s"


def test_summary_is_not_ok_when_a_record_was_lost_or_the_audit_failed() -> None:
    assert _summary(lost=1)["ok"] is False
    failed = _summary(audit=_audit(findings=3))
    assert failed["ok"] is False
    assert failed["audit"]["findings_total"] == 3
    assert _summary(audit=None)["audit"] is None


def test_markdown_section_between_its_markers_with_every_figure() -> None:
    section = markdown_section(_summary(), ENV)
    assert section.startswith(DOCS_BEGIN + "\n")
    assert section.endswith(DOCS_END + "\n")
    assert "**Verdict:** PASS" in section
    assert "2,000 msgs/s offered for 60 s" in section
    assert "| lost | 0 |" in section
    assert "| consumer | 100 | 101 | 101 | +3.00 |" in section
    assert "| 60 | 2,000 | 2,000 | 1,990 | 12.5 | 80.2 | 120.0 | 150 | 90 | 400 | 42 |" in section
    assert "verified: 120,000 envelopes" in section
    assert "peak RSS 1,234 MiB" in section


def test_markdown_section_strides_long_runs_and_keeps_the_last_row() -> None:
    summary = _summary(intervals=95)
    section = markdown_section(summary, ENV)
    table = [ln for ln in section.splitlines() if ln.startswith("| ") and "2,000" in ln]
    assert len(table) <= DOCS_ROWS + 1
    assert table[-1].startswith("| 950 |")
    assert "of 95 interval rows shown" in section


def test_update_docs_appends_markers_once_then_replaces_between_them(tmp_path: Path) -> None:
    doc = tmp_path / "reliability.md"
    doc.write_text("# Reliability\n\nThe lead's text.\n")
    update_docs(doc, markdown_section(_summary(), ENV))
    first = doc.read_text()
    assert first.startswith("# Reliability\n\nThe lead's text.\n")
    assert first.count(DOCS_BEGIN) == first.count(DOCS_END) == 1
    doc.write_text(first + "\n## After\n\nKept.\n")
    update_docs(doc, markdown_section(_summary(lost=2), ENV))
    second = doc.read_text()
    assert second.count(DOCS_BEGIN) == 1
    assert "**Verdict:** FAIL" in second
    assert "**Verdict:** PASS" not in second
    assert second.endswith("## After\n\nKept.\n")


def test_update_docs_creates_a_missing_file(tmp_path: Path) -> None:
    doc = tmp_path / "new.md"
    update_docs(doc, markdown_section(_summary(), ENV))
    assert doc.read_text().startswith(DOCS_BEGIN)


def test_row_line_and_tables_render() -> None:
    line = row_line(_row(10.0))
    assert line.startswith("t, s 10  offered/s 2,000")
    assert "p99 ms 80.2" in line
    assert "broker MiB 400" in line
    assert line.endswith("lag 42")
    none = IntervalRow(20.0, 0.0, 0.0, 0.0, None, None, None, None, 90.0, None, 0)
    assert "p50 ms n/a" in row_line(none)
    titles = [str(t.title) for t in summary_tables(_summary())]
    assert titles[0] == "exchange soak: PASS"


def test_sink_urls_and_masked_passwords(tmp_path: Path) -> None:
    assert sink_url("sqlite", tmp_path) == f"sqlite:{tmp_path / 'soak-sink.db'}"
    assert sink_url("jsonl", tmp_path) == f"jsonl:{tmp_path / 'soak-sink'}"
    assert sink_url("sqlite:/x.db", tmp_path) == "sqlite:/x.db"
    assert shown_sink("postgresql://soak:s3cret@db:5432/x") == "postgresql://soak:***@db:5432/x"
    assert shown_sink("sqlite:/x.db") == "sqlite:/x.db"
