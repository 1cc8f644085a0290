"""The demo exchange: both countries' agencies publishing and consuming over one cluster.

:func:`run_demo` is what ``exchange demo`` runs once a broker is up: it makes (or reuses) the
PKI of both countries under ``$EXCHANGE_HOME/pki``, writes a routing table if there is none,
publishes a seeded corpus of every record family from its originating agencies (each agency
on its own suite, so all three suites are on the wire), consumes every agency's feed into its
own SQLite sink concurrently, and reports per agency what was sent, addressed, delivered,
skipped unread and quarantined.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from exchange.consumers.secure import SecureConsumer
from exchange.crypto.keys import SuiteId
from exchange.crypto.pki import (
    DEMO_AGENCIES,
    FileKeyProvider,
    Passphrase,
    TrustStore,
    bootstrap_demo_pki,
    enroll_agency,
)
from exchange.errors import PolicyError
from exchange.metrics import ExchangeMetrics
from exchange.producers.secure import SecureProducer
from exchange.records import ExchangeRecord
from exchange.records.sample import SampleCorpus, generate_corpus
from exchange.routing import RoutingTable
from exchange.sinks import open_sink

__all__ = ["AgencyTally", "DemoReport", "demo_agencies", "ensure_demo_pki", "run_demo"]

_SUITES = (SuiteId.CLASSIC, SuiteId.PQ_HYBRID, SuiteId.CNSA)

_ROUTING_TOML = """\
# Default recipients per sender and record type (exchange.routing). The demo routes every
# record type from every agency to every enrolled agency: each record's own handling
# markings (TLP, releasable-to, named agencies, caveats) then decide who may receive it.
# A production table narrows this to need-to-know, e.g. trace requests to USA-ATF only.
[[rules]]
senders = ["*"]
record_types = ["*"]
recipients = [{recipients}]
"""


@dataclass
class AgencyTally:
    """One agency's view of a demo run."""

    agency: str
    suite: SuiteId | None = None
    sent: int = 0
    refused: int = 0
    addressed: int = 0
    delivered: int = 0
    duplicates: int = 0
    not_addressed: int = 0
    quarantined: int = 0

    @property
    def country(self) -> str:
        return self.agency.split("-", 1)[0]


@dataclass
class DemoReport:
    """What a demo run did."""

    tallies: dict[str, AgencyTally]
    records: int
    publish_seconds: float
    consume_seconds: float
    pki_created: bool
    sinks: dict[str, str] = field(default_factory=dict)
    #: Deliveries addressed per (record type, sender country, recipient country).
    flows: dict[tuple[str, str, str], int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Every addressed envelope delivered, nothing quarantined."""
        return all(t.delivered == t.addressed and t.quarantined == 0 for t in self.tallies.values())


def demo_agencies(corpus: SampleCorpus) -> tuple[str, ...]:
    """Every agency the corpus originates from or names as a recipient, plus the defaults."""
    found = set(DEMO_AGENCIES)
    for record in corpus.records():
        found.add(record.handling.originator.agency_id)
        found.update(record.handling.releasable_to_agencies or ())
    return tuple(sorted(found))


def ensure_demo_pki(home: Path, passphrase: Passphrase, agencies: Iterable[str]) -> bool:
    """Create both countries' PKI with ``agencies`` enrolled, or enroll those missing.

    Returns:
        Whether the PKI was created by this call.
    """
    wanted = sorted(set(agencies))
    if not (home / "pki" / "trust").is_dir():
        bootstrap_demo_pki(home, passphrase, agencies=wanted)
        return True
    missing = sorted(set(wanted) - TrustStore.load(home).agencies())
    for agency in missing:
        enroll_agency(home, agency, passphrase)
    return False


def _routing(path: Path, agencies: Iterable[str]) -> RoutingTable:
    if not path.exists():
        names = ", ".join(f'"{a}"' for a in sorted(agencies))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_ROUTING_TOML.format(recipients=names), encoding="utf-8")
    return RoutingTable.load(path)


def run_demo(
    *,
    bootstrap: str,
    home: Path,
    passphrase: Passphrase,
    routing_path: Path,
    seed: int,
    cases: int,
    topic_prefix: str = "",
    metrics: ExchangeMetrics | None = None,
    progress: Callable[[str], None] = lambda _: None,
    consume_timeout: float = 120.0,
) -> DemoReport:
    """Publish a corpus from both countries and consume every agency's feed.

    Raises:
        ExchangeError: setting up the PKI, publishing or consuming failed.
    """
    metrics = metrics or ExchangeMetrics()
    corpus = generate_corpus(seed, cases=cases)
    agencies = demo_agencies(corpus)
    progress("setting up both countries' PKI")
    created = ensure_demo_pki(home, passphrase, agencies)
    trust = TrustStore.load(home)
    routing = _routing(routing_path, trust.agencies())
    tallies = {a: AgencyTally(a) for a in agencies}
    flows: dict[tuple[str, str, str], int] = {}

    progress("publishing signed and encrypted records")
    began = time.monotonic()
    by_sender: dict[str, list[ExchangeRecord]] = {}
    for record in corpus.records():
        by_sender.setdefault(record.handling.originator.agency_id, []).append(record)
    for index, (sender, records) in enumerate(sorted(by_sender.items())):
        # Senders take turns on the three suites, so all of them are on the wire.
        tally = tallies[sender]
        tally.suite = _SUITES[index % len(_SUITES)]
        provider = FileKeyProvider.from_home(home, sender, passphrase)
        with SecureProducer(
            bootstrap=bootstrap, sender=provider, trust=trust, routing=routing,
            suite=tally.suite or SuiteId.CLASSIC, topic_prefix=topic_prefix, metrics=metrics,
        ) as producer:  # fmt: skip
            for record in records:
                try:
                    recipients = producer.publish(record)
                except PolicyError:
                    tally.refused += 1
                    continue
                tally.sent += 1
                rtype = producer.record_type_of(record).name
                for agency in recipients:
                    tallies[agency].addressed += 1
                    key = (rtype, tally.country, tallies[agency].country)
                    flows[key] = flows.get(key, 0) + 1
    publish_seconds = time.monotonic() - began

    progress("consuming every agency's feed into its sink")
    began = time.monotonic()
    sinks = {a: f"sqlite:{home / 'sinks' / f'{a}.db'}" for a in agencies}
    (home / "sinks").mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + consume_timeout

    def consume(agency: str) -> None:
        # Runs in a worker thread: the sink's connection is opened (and used) in this thread.
        tally = tallies[agency]
        provider = FileKeyProvider.from_home(home, agency, passphrase)
        with open_sink(sinks[agency]) as sink, SecureConsumer(
            bootstrap=bootstrap, recipient=provider, trust=trust, sink=sink,
            topic_prefix=topic_prefix, metrics=metrics,
        ) as consumer:  # fmt: skip
            summary = consumer.run(
                should_stop=lambda: (
                    consumer.summary.delivered + consumer.summary.quarantined_total
                    >= tally.addressed
                    or time.monotonic() > deadline
                ),
                poll_timeout=0.2,
            )
        tally.delivered = summary.delivered
        tally.duplicates = summary.duplicates
        tally.not_addressed = summary.not_addressed
        tally.quarantined = summary.quarantined_total

    with ThreadPoolExecutor(max_workers=len(agencies), thread_name_prefix="demo") as pool:
        for future in [pool.submit(consume, a) for a in agencies if tallies[a].addressed]:
            future.result()
    return DemoReport(
        tallies=tallies,
        records=sum(t.sent for t in tallies.values()),
        publish_seconds=publish_seconds,
        consume_seconds=time.monotonic() - began,
        pki_created=created,
        sinks=sinks,
        flows=flows,
    )
