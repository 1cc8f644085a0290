"""Presenting a soak: the ``--json`` object, the rich tables, the Markdown section.

The JSON object is the single source: the tables and the Markdown section are rendered from
it, so what the docs record is exactly what ``--json`` printed. Unstable module:
:mod:`exchange.cli.soak` is its caller.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from exchange.bench.report import write_section
from exchange.soak.audit import AuditOutcome
from exchange.soak.runner import SoakRun
from exchange.soak.stats import IntervalRow

__all__ = [
    "DOCS_BEGIN",
    "DOCS_END",
    "markdown_section",
    "row_line",
    "summary_json",
    "summary_tables",
    "update_docs",
]

DOCS_BEGIN = "<!-- exchange soak: begin -->"
DOCS_END = "<!-- exchange soak: end -->"
#: At most this many interval rows in the Markdown table (evenly strided, the last kept).
DOCS_ROWS = 30
_ROLES = ("producer", "consumer", "broker")
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("t_s", "t, s", "{:.0f}"),
    ("offered_per_s", "offered/s", "{:,.0f}"),
    ("achieved_per_s", "achieved/s", "{:,.0f}"),
    ("consumed_per_s", "consumed/s", "{:,.0f}"),
    ("p50_ms", "p50 ms", "{:,.1f}"),
    ("p99_ms", "p99 ms", "{:,.1f}"),
    ("max_ms", "max ms", "{:,.1f}"),
    ("producer_rss_mib", "producer MiB", "{:.0f}"),
    ("consumer_rss_mib", "consumer MiB", "{:.0f}"),
    ("broker_rss_mib", "broker MiB", "{:.0f}"),
    ("lag", "lag", "{:,}"),
)


def summary_json(
    run: SoakRun, audit: AuditOutcome | None, *, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``--json`` object: settings, verdict, accounting, latency, RSS, rows, audit."""
    acc = run.accounting
    hist = run.latency
    span = run.elapsed if run.elapsed > 0 else math.nan
    out: dict[str, Any] = dict(settings)
    out.update(
        ok=acc.clean and not run.errors and (audit is None or audit.ok),
        errors=run.errors,
        topic_prefix=run.prefix,
        elapsed_s=_num(run.elapsed),
        accounting=acc.to_json(),
        delivered_msgs_per_s=_num(acc.delivered / span),
        latency_ms={
            "p50": _num(hist.percentile(50)),
            "p99": _num(hist.percentile(99)),
            "p999": _num(hist.percentile(99.9)),
            "max": _num(hist.max_ms),
            "count": hist.count,
        },
        rss_mib={role: run.rss[role].to_json() for role in _ROLES},
        peak_rss_mib={
            role: None if value is None else round(value / 2**20, 1)
            for role, value in run.peak_rss.items()
        },
        intervals=[row.to_json() for row in run.rows],
        audit=None if audit is None else audit.to_json(),
    )
    return out


def row_line(row: IntervalRow) -> str:
    """One interval as a log line an operator reads while the soak runs."""
    values = row.to_json()
    return "  ".join(f"{label} {_fmt(values[key], fmt)}" for key, label, fmt in _COLUMNS)


def summary_tables(summary: Mapping[str, Any]) -> list[Table]:
    """The verdict, accounting and latency; RSS per role."""
    verdict = "PASS" if summary["ok"] else "FAIL"
    totals = Table(title=f"exchange soak: {verdict}")
    totals.add_column("figure")
    totals.add_column("value", justify="right")
    for label, value in _totals(summary):
        totals.add_row(label, value)
    rss = Table(title="RSS, MiB (slope over the second half, MiB/min)")
    for column in ("role", "first", "peak", "last", "slope"):
        rss.add_column(column, justify="left" if column == "role" else "right")
    for role in _ROLES:
        r = summary["rss_mib"][role]
        rss.add_row(role, *(_fmt(r[k], f) for k, f in _RSS_FIELDS))
    return [totals, rss]


_RSS_FIELDS = (
    ("first_mib", "{:.0f}"),
    ("peak_mib", "{:.0f}"),
    ("last_mib", "{:.0f}"),
    ("slope_mib_per_min", "{:+.2f}"),
)


def _totals(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    acc, lat = summary["accounting"], summary["latency_ms"]
    rows = [
        ("scheduled", f"{acc['scheduled']:,}"),
        ("accepted by the broker", f"{acc['accepted']:,}"),
        ("failed to publish", f"{acc['failed']:,}"),
        ("delivered (stored by the consumer)", f"{acc['delivered']:,}"),
        ("in the sink (rows / distinct record ids)",
         f"{acc['stored_rows']:,} / {acc['stored_distinct']:,}"),
        ("lost", f"{acc['lost']:,}"),
        ("duplicated", f"{acc['duplicated']:,}"),
        ("quarantined", f"{acc['quarantined']:,}"),
        ("stored msgs/s (first due to last stored)",
         _fmt(summary["delivered_msgs_per_s"], "{:,.0f}")),
        ("latency p50 / p99 / p99.9 / max, ms",
         " / ".join(_fmt(lat[k], "{:,.1f}") for k in ("p50", "p99", "p999", "max"))),
    ]  # fmt: skip
    audit = summary.get("audit")
    if audit is not None:
        rows.append(("audit", _audit_line(audit)))
    rows += [("error", e) for e in summary["errors"]]
    return rows


def _audit_line(audit: Mapping[str, Any]) -> str:
    entries = ", ".join(f"{a} {n:,}" for a, n in audit["log_entries"].items())
    head = "verified" if audit["ok"] else f"FAILED ({audit['findings_total']} finding(s))"
    return (
        f"{head}: {audit['envelopes']:,} envelopes, log entries {entries}, "
        f"{audit['receipts_logged']:,} receipts logged, {audit['cosignatures']} cosignatures, "
        f"{audit['seconds']:.0f} s, peak RSS {audit['peak_rss_mib']:,} MiB"
    )


def markdown_section(summary: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """The generated section of docs/reliability.md, between its markers."""
    lines = [
        DOCS_BEGIN,
        f"- **Date:** {env['date']}.",
        f"- **Machine:** {env['machine']}.",
        f"- **Versions:** {env['versions']}.",
        f"- **Command:** `{summary['command']}`.",
        f"- **Load:** {summary['rate']:,.0f} msgs/s offered for {summary['duration_s']:,.0f} s "
        f"(open loop), suite `{summary['suite']}`, {summary['partitions']} partitions, one "
        f"sender (MEX-FGR), one recipient (USA-ATF), sink `{summary['sink']}`, audit "
        f"{'on' if summary['audit_enabled'] else 'off'}; a row every "
        f"{summary['interval_s']:g} s.",
        f"- **Verdict:** {'PASS' if summary['ok'] else 'FAIL'}.",
        "",
        "| figure | value |",
        "|---|---:|",
        *(f"| {label} | {value} |" for label, value in _totals(summary)),
        "",
        "| RSS, MiB | first | peak | last | slope, MiB/min (second half) |",
        "|---|---:|---:|---:|---:|",
    ]
    for role in _ROLES:
        r = summary["rss_mib"][role]
        lines.append(f"| {role} | " + " | ".join(_fmt(r[k], f) for k, f in _RSS_FIELDS) + " |")
    rows = _strided(summary["intervals"], DOCS_ROWS)
    lines += [
        "",
        "| " + " | ".join(label for _, label, _ in _COLUMNS) + " |",
        "|" + "---:|" * len(_COLUMNS),
        *("| " + " | ".join(_fmt(r[k], f) for k, _, f in _COLUMNS) + " |" for r in rows),
    ]
    if len(rows) < len(summary["intervals"]):
        lines.append(f"\n{len(rows)} of {len(summary['intervals'])} interval rows shown "
                     "(evenly spaced, the last included); `--json` has all of them.")  # fmt: skip
    lines.append(DOCS_END)
    return "\n".join(lines) + "\n"


def update_docs(path: Path, section: str) -> None:
    """Replace the soak section of ``path`` between its markers, or append it."""
    write_section(path, section, begin=DOCS_BEGIN, end=DOCS_END)


def _strided(rows: Sequence[Mapping[str, Any]], most: int) -> list[Mapping[str, Any]]:
    if len(rows) <= most:
        return list(rows)
    stride = math.ceil(len(rows) / most)
    picked = list(rows[stride - 1 :: stride])
    if picked[-1] is not rows[-1]:
        picked.append(rows[-1])
    return picked


def _fmt(value: Any, fmt: str) -> str:
    return "n/a" if value is None else fmt.format(value)


def _num(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)
