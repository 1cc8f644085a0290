"""``exchange soak``: a steady load through producer, broker and consumer, watched over time.

A thin layer: :mod:`exchange.soak.runner` drives and samples the load,
:mod:`exchange.soak.audit` verifies the trail, :mod:`exchange.soak.stats` computes and
:mod:`exchange.soak.report` presents. See docs/soak.md for the method.
"""

from __future__ import annotations

import json
import signal
import tempfile
from pathlib import Path
from types import FrameType

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from exchange.bench.report import environment
from exchange.bench.runner import run_broker
from exchange.bench.stats import SECURE_VARIANTS
from exchange.bench.workload import keys
from exchange.cli._context import CliContext, pass_cli
from exchange.crypto.keys import SuiteId
from exchange.soak.audit import AuditOutcome, verify_soak_audit
from exchange.soak.report import (
    markdown_section,
    row_line,
    summary_json,
    summary_tables,
    update_docs,
)
from exchange.soak.runner import Live, SoakPlan, run_soak, shown_sink, sink_url
from exchange.soak.stats import IntervalRow, parse_duration

__all__ = ["soak"]


class _Duration(click.ParamType[float]):
    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command()
@click.option(
    "--rate", type=click.FloatRange(1, 100_000), default=2_000.0, show_default=True,
    help="Offered load, msgs/s (open loop: a record is due every 1/rate s).",
)  # fmt: skip
@click.option(
    "--duration", type=_Duration(), default="10m", show_default=True,
    help="How long the load is offered: 10m, 90s, 1h30m.",
)  # fmt: skip
@click.option(
    "--suite", type=click.Choice(SECURE_VARIANTS), default="classic", show_default=True,
    help="Suite every envelope is sealed on.",
)  # fmt: skip
@click.option(
    "--audit/--no-audit", default=True, show_default=True,
    help="Both agencies keep audit logs with receipts, verified at the end (as deployed).",
)  # fmt: skip
@click.option(
    "--sink", default="sqlite", show_default=True,
    help="The consumer's sink: sqlite or jsonl (fresh, in a temporary directory) or a sink "
    "URL (sqlite:PATH, jsonl:DIR, postgresql://...).",
)  # fmt: skip
@click.option(
    "--interval", type=_Duration(), default="10s", show_default=True,
    help="Seconds between report rows.",
)  # fmt: skip
@click.option(
    "--drain-timeout", type=_Duration(), default="2m", show_default=True,
    help="After the load, give up on a consumer that stores nothing for this long.",
)  # fmt: skip
@click.option(
    "--docs", type=click.Path(dir_okay=False, path_type=Path),
    help="Write the result into this Markdown file between its `exchange soak` markers "
    "(docs/reliability.md); the markers are appended when missing.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@pass_cli
def soak(
    cli: CliContext, *, rate: float, duration: float, suite: str, audit: bool, sink: str,
    interval: float, drain_timeout: float, docs: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """Drive a steady paced load through SecureProducer, Kafka and SecureConsumer.

    Reports, every --interval: offered, achieved and consumed msgs/s, latency p50/p99/max,
    RSS of producer, consumer and broker, and the consumer's lag; at the end: what was
    accepted, stored, lost and duplicated, RSS trends, and (with --audit) the audit
    verification of both agencies' logs. Uses EXCHANGE_BOOTSTRAP when set; otherwise starts
    a one-node broker in a temporary EXCHANGE_HOME and stops it at the end. Exits 1 if a
    record was lost, duplicated or quarantined, or the audit failed.
    """
    if interval > duration:
        raise click.BadParameter("must not exceed --duration", param_hint="--interval")
    # SIGTERM (a `timeout`, a CI job cancelled) unwinds like Ctrl-C: the workers are stopped
    # and the broker this command started is stopped too.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        _soak(
            cli, rate=rate, duration=duration, suite=suite, audit=audit, sink=sink,
            interval=interval, drain_timeout=drain_timeout, docs=docs, as_json=as_json,
        )  # fmt: skip
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _soak(
    cli: CliContext, *, rate: float, duration: float, suite: str, audit: bool, sink: str,
    interval: float, drain_timeout: float, docs: Path | None, as_json: bool,
) -> None:  # fmt: skip
    err = Console(stderr=True)
    command = _command(rate=rate, duration=duration, suite=suite, audit=audit, sink=sink,
                       interval=interval, docs=docs, as_json=as_json)  # fmt: skip
    outcome: AuditOutcome | None = None
    with (
        run_broker(cli.settings) as broker,
        tempfile.TemporaryDirectory(prefix="exchange-soak-") as workdir,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar,  # fmt: skip
    ):
        plan = SoakPlan(
            bootstrap=broker.bootstrap, suite=suite, rate=rate, duration=duration,
            interval=interval, audit=audit, sink=sink_url(sink, Path(workdir)),
            workdir=Path(workdir), broker_pid=broker.pid, drain_timeout=drain_timeout,
        )  # fmt: skip
        err.print(
            f"soak: {plan.records:,} {suite} records at {rate:,.0f} msgs/s for {duration:,.0f} s "
            f"through {broker.bootstrap}; audit {'on' if audit else 'off'}; a row every "
            f"{interval:g} s",
            soft_wrap=True,
        )
        task = bar.add_task("starting", total=plan.records)

        def on_row(row: IntervalRow, live: Live) -> None:
            bar.console.print(row_line(row), highlight=False, soft_wrap=True)
            p99 = "n/a" if live.last_p99_ms is None else f"{live.last_p99_ms:,.0f} ms"
            bar.update(
                task, completed=live.delivered,
                description=f"{live.phase}: sent {live.accepted:,}, stored {live.delivered:,}, "
                f"lag {row.lag:,}, p99 {p99}",
            )  # fmt: skip

        run = run_soak(plan, on_row)
        if audit:
            bar.update(task, description="audit")
            outcome = verify_soak_audit(
                plan.audit_root, keys(SuiteId(suite)), bootstrap=broker.bootstrap,
                prefix=run.prefix, progress=lambda what: bar.update(task, description=what),
            )  # fmt: skip
    settings = {
        "command": command, "rate": rate, "duration_s": duration, "interval_s": interval,
        "suite": suite, "audit_enabled": audit, "sink": shown_sink(sink),
        "partitions": plan.partitions, "records": plan.records,
    }  # fmt: skip
    summary = summary_json(run, outcome, settings=settings)
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
    else:
        out = Console()
        for table in summary_tables(summary):
            out.print(table)
    if docs is not None:
        update_docs(docs, markdown_section(summary, environment(broker.kafka)))
        err.print(f"wrote the soak section into {docs}")
    if not summary["ok"]:
        raise click.exceptions.Exit(1)


def _command(
    *, rate: float, duration: float, suite: str, audit: bool, sink: str, interval: float,
    docs: Path | None, as_json: bool,
) -> str:  # fmt: skip
    parts = ["exchange soak", f"--rate {rate:g}", f"--duration {duration:g}s",
             f"--suite {suite}", f"--interval {interval:g}s"]  # fmt: skip
    if not audit:
        parts.append("--no-audit")
    if sink != "sqlite":
        parts.append(f"--sink {shown_sink(sink)}")
    if docs is not None:
        parts.append(f"--docs {docs}")
    if as_json:
        parts.append("--json")
    return " ".join(parts)
