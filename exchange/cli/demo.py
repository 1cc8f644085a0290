"""``exchange demo``: the main job, end to end on a local Kafka broker.

Brings up (or reuses) the local single-node broker unless ``EXCHANGE_BOOTSTRAP`` names a
cluster, generates a seeded corpus of all five record families from both countries,
publishes it, reads it back, checks each record equals what was sent, and prints a table.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass

import click
from rich.console import Console
from rich.table import Table

from exchange.cli._context import CliContext, pass_cli
from exchange.consumers.unsealed import UnsealedAvroConsumer
from exchange.errors import ExchangeError
from exchange.producers.unsealed import UnsealedAvroProducer
from exchange.records import RECORD_TYPE_NAMES, ExchangeRecord, record_type
from exchange.records.sample import generate_corpus
from exchange.topics import TopicSpec, ensure_topics

__all__ = ["demo"]


class DemoMismatchError(ExchangeError):
    """What came back from the broker is not what was sent."""


@dataclass
class FamilyTally:
    sent: int = 0
    received: int = 0
    matching: int = 0
    bytes: int = 0
    mex: int = 0
    usa: int = 0


def _bootstrap(cli: CliContext, err: Console) -> str:
    if cli.settings.bootstrap:
        return cli.settings.bootstrap
    from exchange.broker import ensure_cluster  # noqa: PLC0415 - tooling, only when needed

    with err.status("starting the local Kafka broker") as status:
        info = ensure_cluster(cli.settings.home, nodes=1, progress=status.update)
    how = "reused" if info.reused else f"started in {info.elapsed_s:.1f} s"
    err.print(f"broker {info.bootstrap} ({how}), data under {cli.settings.home}")
    return info.bootstrap


@click.command()
@click.option("--seed", type=int, default=2026, show_default=True, help="Sample data seed.")
@click.option(
    "--cases",
    type=click.IntRange(1, 1000),
    default=4,
    show_default=True,
    help="Cases to generate (each yields records of every family).",
)
@pass_cli
def demo(cli: CliContext, seed: int, cases: int) -> None:
    """Run records of every family from both countries through a real Kafka broker."""
    err = Console(stderr=True)
    bootstrap = _bootstrap(cli, err)
    run = uuid.uuid4().hex[:8]
    topics = {name: f"demo.{run}.{name}" for name in RECORD_TYPE_NAMES}
    ensure_topics(bootstrap, [TopicSpec(t, partitions=3) for t in topics.values()])

    corpus = generate_corpus(seed, cases=cases)
    tallies = {name: FamilyTally() for name in RECORD_TYPE_NAMES}
    sent: dict[str, ExchangeRecord] = {}
    began = time.monotonic()
    with UnsealedAvroProducer(bootstrap=bootstrap, client_id=f"demo-{run}") as producer:
        for name in RECORD_TYPE_NAMES:
            rtype = record_type(name)
            for record in corpus.of_type(name):
                tally = tallies[name]
                tally.bytes += producer.publish(
                    rtype, record, topic=topics[name], key=record.meta.record_id.encode()
                )
                tally.sent += 1
                country = record.handling.originator.country
                tally.mex += country == "MEX"
                tally.usa += country == "USA"
                sent[record.meta.record_id] = record
    total = len(sent)
    with UnsealedAvroConsumer(
        bootstrap=bootstrap,
        group_id=f"demo-{run}",
        client_id=f"demo-{run}",
        topics=list(topics.values()),
    ) as consumer:
        for item in consumer.records(idle_timeout=15.0, limit=total):
            tally = tallies[item.record_type.name]
            tally.received += 1
            tally.matching += sent.get(item.record.meta.record_id) == item.record
            consumer.commit(item)
    elapsed = time.monotonic() - began
    _print_table(tallies, run, elapsed)
    _check(tallies)


def _print_table(tallies: dict[str, FamilyTally], run: str, elapsed: float) -> None:
    table = Table(title=f"records through Kafka (topics demo.{run}.*)")
    for column in ("family", "from MEX", "from USA", "sent", "received", "identical", "avg B"):
        table.add_column(column, justify="left" if column == "family" else "right")
    totals: Counter[str] = Counter()
    for name, t in tallies.items():
        table.add_row(
            name,
            str(t.mex),
            str(t.usa),
            str(t.sent),
            str(t.received),
            str(t.matching),
            str(t.bytes // max(t.sent, 1)),
        )
        totals.update(sent=t.sent, received=t.received, matching=t.matching)
    Console().print(table)
    Console().print(
        f"{totals['received']}/{totals['sent']} records back in {elapsed:.1f} s, "
        f"{totals['matching']} identical to what was sent."
    )
    Console().print(
        "Next: `exchange sample --type seizure --count 2` shows records as JSON; "
        "`exchange broker status` shows the broker; `make broker-down` stops it."
    )


def _check(tallies: dict[str, FamilyTally]) -> None:
    for name, t in tallies.items():
        if not t.sent == t.received == t.matching:
            raise DemoMismatchError(
                f"{name}: sent {t.sent}, received {t.received}, identical {t.matching}; "
                "see `exchange broker logs`"
            )
