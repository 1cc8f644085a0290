"""``exchange bench``: plain Avro vs every suite, side by side, through a real broker.

A thin layer: :mod:`exchange.bench.runner` measures, :mod:`exchange.bench.stats` computes,
:mod:`exchange.bench.report` presents. See docs/benchmarks.md for the method and results.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress

from exchange.bench.report import (
    environment,
    markdown_section,
    rich_table,
    sweep_table,
    update_docs,
)
from exchange.bench.runner import (
    BenchPlan,
    run_broker,
    run_memory_check,
    run_paced,
    run_variant,
    warm_up,
)
from exchange.bench.stats import SECURE_VARIANTS, summary_json
from exchange.cli._context import CliContext, pass_cli

__all__ = ["bench"]


@click.command()
@click.option(
    "--records",
    type=click.IntRange(1, 10_000_000),
    default=20_000,
    show_default=True,
    help="Records per closed-loop and drain phase.",
)
@click.option(
    "--rate",
    type=click.FloatRange(1, 1e6),
    default=5_000.0,
    show_default=True,
    help="Offered rate of the paced latency phase, msgs/s.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(0.1, 3600),
    default=10.0,
    show_default=True,
    help="Duration of the paced latency phase.",
)
@click.option(
    "--pool",
    type=click.IntRange(1, 10_000),
    default=500,
    show_default=True,
    help="Distinct seeded sample records cycled through.",
)
@click.option(
    "--suite",
    "suites",
    type=click.Choice(SECURE_VARIANTS),
    multiple=True,
    help="Suites to compare with plain Avro (repeatable; default all).",
)
@click.option(
    "--quick", is_flag=True, help="Smoke run: 1,000 records, 1,000 msgs/s for 2 s, a pool of 50."
)
@click.option(
    "--memory-records",
    type=click.IntRange(0, 10_000_000),
    default=0,
    show_default=True,
    help="Also push this many records through classic and "
    "sample the consumer's RSS (the issue asks 100,000); 0 skips it.",
)
@click.option(
    "--sweep",
    "sweep_rates",
    type=click.FloatRange(1, 1e6),
    multiple=True,
    help="Also measure latency alone at this offered rate, msgs/s, for every variant "
    "(repeatable): where p99 stays low on this machine.",
)
@click.option(
    "--docs",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the table into this Markdown file (docs/benchmarks.md).",
)
@click.option(
    "--docs-tag",
    default="main",
    show_default=True,
    help="Name of the section in --docs (runs with other settings keep their own).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@pass_cli
def bench(
    cli: CliContext, *, records: int, rate: float, seconds: float, pool: int,
    suites: tuple[str, ...], quick: bool, memory_records: int, sweep_rates: tuple[float, ...],
    docs: Path | None, docs_tag: str, as_json: bool,
) -> None:  # fmt: skip
    """Measure plain Avro and the sealed suites in one run on a real Kafka broker.

    Uses EXCHANGE_BOOTSTRAP when set; otherwise starts a one-node broker in a temporary
    EXCHANGE_HOME on free ports and stops it at the end. Each role runs in its own process.
    The audit trail is off (see docs/benchmarks.md). Exits 1 if any record went missing.
    """
    if quick:
        records, rate, seconds, pool = min(records, 1_000), min(rate, 1_000.0), 2.0, 50
    variants = ("plain", *(suites or SECURE_VARIANTS))
    err = Console(stderr=True)
    command = _command(
        records=records, rate=rate, seconds=seconds, pool=pool, suites=suites,
        memory_records=memory_records, sweep_rates=sweep_rates, docs=docs, docs_tag=docs_tag,
        as_json=as_json,
    )  # fmt: skip
    rates = sorted(set(sweep_rates))
    steps = 1 + len(variants) * (3 + len(rates)) + (1 if memory_records else 0)
    with (
        run_broker(cli.settings) as broker,
        tempfile.TemporaryDirectory(prefix="exchange-bench-") as workdir,
        Progress(console=err, transient=True) as bar,
    ):
        task = bar.add_task("starting", total=steps)
        started = [False]

        def step(what: str) -> None:
            # Called before each step: the previous one is done.
            bar.update(task, description=what, advance=1 if started[0] else 0)
            started[0] = True

        plan = BenchPlan(broker.bootstrap, records, rate, seconds, pool, 3, Path(workdir))
        warm_up(plan, step)
        results = [run_variant(plan, v, step) for v in variants]
        sweep = [run_paced(plan, v, r, step) for r in rates for v in variants]
        memory = run_memory_check(plan, "classic", memory_records, step) if memory_records else None
        bar.update(task, advance=1)
    settings = {
        "command": command, "records": records, "rate": rate, "seconds": seconds, "pool": pool,
        "partitions": plan.partitions, "audit": False, "variants": list(variants),
    }  # fmt: skip
    summary = summary_json(results, settings=settings, memory=memory, sweep=sweep)
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
    else:
        Console().print(rich_table(summary))
        by_rate = sweep_table(summary)
        if by_rate is not None:
            Console().print(by_rate)
    if docs is not None:
        update_docs(docs, markdown_section(summary, environment(broker.kafka), docs_tag), docs_tag)
        err.print(f"wrote the table into {docs}")
    if not all(r.complete for r in results) or not all(r.complete for r in sweep):
        raise click.exceptions.Exit(1)


def _command(
    *,
    records: int, rate: float, seconds: float, pool: int, suites: tuple[str, ...],
    memory_records: int, sweep_rates: tuple[float, ...], docs: Path | None, docs_tag: str,
    as_json: bool,
) -> str:  # fmt: skip
    parts = ["exchange bench", f"--records {records}", f"--rate {rate:g}",
             f"--seconds {seconds:g}", f"--pool {pool}"]  # fmt: skip
    parts += [f"--suite {s}" for s in suites]
    if memory_records:
        parts.append(f"--memory-records {memory_records}")
    parts += [f"--sweep {r:g}" for r in sweep_rates]
    if docs is not None:
        parts.append(f"--docs {docs}")
        if docs_tag != "main":
            parts.append(f"--docs-tag {docs_tag}")
    if as_json:
        parts.append("--json")
    return " ".join(parts)
