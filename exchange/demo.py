"""The demo exchange: both countries' agencies publishing and consuming over one cluster.

:func:`run_demo` is what ``exchange demo`` runs once a broker is up: it makes (or reuses) the
PKI of both countries under ``$EXCHANGE_HOME/pki``, writes a routing table if there is none,
publishes a seeded corpus of every record family from its originating agencies (each agency
on its own suite, so all three suites are on the wire), consumes every agency's feed into its
own SQLite sink concurrently, and reports per agency what was sent, addressed, delivered,
skipped unread and quarantined.

With ``audit_root`` (the CLI passes ``$EXCHANGE_HOME/audit``) every agency logs what it did
(publish, delivery, quarantine entries), recipients send signed receipts that the senders
then collect and log, and each country's demo agencies witness the other country's logs
(a direct library call: both countries run in this one process; see
:mod:`exchange.audit.witnessing`). ``exchange audit verify`` then checks all of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from exchange.audit import Witness, WitnessPolicy
from exchange.audit.agency import AgencyAudit
from exchange.audit.note import AgencyNoteSigner
from exchange.audit.witnessing import (
    AuditHome,
    WitnessOutcome,
    load_witness_policies,
    witness_logs,
    write_witness_policies,
)
from exchange.audit_bus import AuditTopicWriter, collect_receipts_from_bus
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
from exchange.identifiers import agency_country
from exchange.metrics import ExchangeMetrics
from exchange.policy import allowed_recipients, summary_from_handling
from exchange.producers.secure import SecureProducer
from exchange.records import RECORD_TYPE_NAMES, ExchangeRecord
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
    #: The sample seed the corpus came from (see :func:`showing_corpus`).
    seed: int
    records: int
    publish_seconds: float
    consume_seconds: float
    pki_created: bool
    sinks: dict[str, str] = field(default_factory=dict)
    #: Deliveries addressed per (record type, sender country, recipient country).
    flows: dict[tuple[str, str, str], int] = field(default_factory=dict)
    #: Where the audit logs are (None: the demo ran without audit).
    audit_root: Path | None = None
    receipts_logged: int = 0
    cosignatures: int = 0
    witness_refusals: list[str] = field(default_factory=list)

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


#: Family and direction pairs the demo shows. Trace requests cross MEX->USA and trace results
#: USA->MEX (ATF is the tracing authority), so the pair of families covers both ways.
SHOWN_FLOWS: frozenset[tuple[str, str, str]] = frozenset(
    {
        *((family, a, b) for family in ("seizure", "ballistic", "intel")
          for a, b in (("MEX", "USA"), ("USA", "MEX"))),
        ("trace-request", "MEX", "USA"),
        ("trace-response", "USA", "MEX"),
    }
)  # fmt: skip
_MAX_SEED_TRIES = 200


def corpus_flows(corpus: SampleCorpus) -> frozenset[tuple[str, str, str]]:
    """The (family, sender country, recipient country) flows the corpus's handling allows
    when every agency it names is enrolled and routed."""
    agencies = demo_agencies(corpus)
    flows = set()
    for family in RECORD_TYPE_NAMES:
        for record in corpus.of_type(family):
            sender = record.handling.originator.agency_id
            summary = summary_from_handling(record.handling)
            for agency in allowed_recipients(summary, agencies, sender=sender):
                flows.add((family, agency_country(sender), agency_country(agency)))
    return frozenset(flows)


def showing_corpus(seed: int, cases: int) -> tuple[int, SampleCorpus]:
    """The corpus of the first seed from ``seed`` on whose records cross the border in every
    :data:`SHOWN_FLOWS` direction (sample data is random; the demo should show it all), and
    that seed. After a bounded search it settles for ``seed`` itself."""
    for candidate in range(seed, seed + _MAX_SEED_TRIES):
        corpus = generate_corpus(candidate, cases=cases)
        if corpus_flows(corpus) >= SHOWN_FLOWS:
            return candidate, corpus
    return seed, generate_corpus(seed, cases=cases)


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
    audit_root: Path | None = None,
    witness_quorum: int = 2,
) -> DemoReport:
    """Publish a corpus from both countries and consume every agency's feed.

    Args:
        audit_root: keep audit logs, receipts and witness state here (None: no audit).
        witness_quorum: cosignatures of the counterpart country's demo agencies each log
            needs (written to the witness policy file when there is none).

    Raises:
        ExchangeError: setting up the PKI, publishing, consuming or auditing failed.
    """
    metrics = metrics or ExchangeMetrics()
    seed, corpus = showing_corpus(seed, cases)
    agencies = demo_agencies(corpus)
    progress("setting up both countries' PKI")
    created = ensure_demo_pki(home, passphrase, agencies)
    trust = TrustStore.load(home)
    routing = _routing(routing_path, trust.agencies())
    tallies = {a: AgencyTally(a) for a in agencies}
    flows: dict[tuple[str, str, str], int] = {}
    providers = {a: FileKeyProvider.from_home(home, a, passphrase) for a in agencies}
    ah = None if audit_root is None else AuditHome(audit_root)
    if ah is not None and not ah.policy_path.exists():
        write_witness_policies(ah.policy_path, _demo_policies(witness_quorum))

    def audit_of(agency: str) -> AgencyAudit | nullcontext[None]:
        if ah is None:
            return nullcontext()
        writer = AuditTopicWriter(bootstrap=bootstrap, agency_id=agency, topic_prefix=topic_prefix)
        return AgencyAudit.open(ah.log_dir(agency), providers[agency], publisher=writer)

    progress("publishing signed and encrypted records")
    began = time.monotonic()
    for index, (sender, records) in enumerate(_by_sender(corpus)):
        # Senders take turns on the three suites, so all of them are on the wire.
        tally = tallies[sender]
        tally.suite = _SUITES[index % len(_SUITES)]
        with audit_of(sender) as audit, SecureProducer(
            bootstrap=bootstrap, sender=providers[sender], trust=trust, routing=routing,
            suite=tally.suite or SuiteId.CLASSIC, topic_prefix=topic_prefix, metrics=metrics,
            audit=audit,
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
        with open_sink(sinks[agency]) as sink, audit_of(agency) as audit, SecureConsumer(
            bootstrap=bootstrap, recipient=providers[agency], trust=trust, sink=sink,
            topic_prefix=topic_prefix, metrics=metrics, audit=audit,
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
    consume_seconds = time.monotonic() - began
    receipts, outcomes = (0, []) if ah is None else _finish_audit(
        ah, senders=sorted(a for a in agencies if tallies[a].sent), providers=providers,
        trust=trust, bootstrap=bootstrap, topic_prefix=topic_prefix, progress=progress,
    )  # fmt: skip
    return DemoReport(
        tallies=tallies,
        seed=seed,
        records=sum(t.sent for t in tallies.values()),
        publish_seconds=publish_seconds,
        consume_seconds=consume_seconds,
        pki_created=created,
        sinks=sinks,
        flows=flows,
        audit_root=audit_root,
        receipts_logged=receipts,
        cosignatures=sum(1 for o in outcomes if o.refused is None),
        witness_refusals=[
            f"{o.witness} on {o.log_agency}: {o.refused}" for o in outcomes if o.refused
        ],
    )


def _by_sender(corpus: SampleCorpus) -> list[tuple[str, list[ExchangeRecord]]]:
    by_sender: dict[str, list[ExchangeRecord]] = {}
    for record in corpus.records():
        by_sender.setdefault(record.handling.originator.agency_id, []).append(record)
    return sorted(by_sender.items())


def _finish_audit(
    ah: AuditHome,
    *,
    senders: list[str],
    providers: dict[str, FileKeyProvider],
    trust: TrustStore,
    bootstrap: str,
    topic_prefix: str,
    progress: Callable[[str], None],
) -> tuple[int, list[WitnessOutcome]]:
    """Senders collect and log their receipts; then every witness cosigns what it follows."""
    progress("collecting receipts; witnesses cosigning the other country's checkpoints")
    logged = 0
    for sender in senders:
        writer = AuditTopicWriter(bootstrap=bootstrap, agency_id=sender, topic_prefix=topic_prefix)
        with AgencyAudit.open(ah.log_dir(sender), providers[sender], publisher=writer) as audit:
            logged += collect_receipts_from_bus(
                audit, bootstrap=bootstrap, trust=trust, topic_prefix=topic_prefix
            ).logged
    return logged, _witness(ah, trust, providers)


def _demo_policies(quorum: int) -> dict[str, WitnessPolicy]:
    """Each country's logs are witnessed by the other country's demo agencies."""
    by_country: dict[str, set[str]] = {}
    for agency in DEMO_AGENCIES:
        by_country.setdefault(agency.split("-", 1)[0], set()).add(agency)
    return {
        country: WitnessPolicy(frozenset(w), quorum)
        for country in by_country
        for other, w in by_country.items()
        if other != country
    }


def _witness(
    ah: AuditHome, trust: TrustStore, providers: dict[str, FileKeyProvider]
) -> list[WitnessOutcome]:
    policies = load_witness_policies(ah.policy_path)
    logs = ah.logs()
    now = datetime.now(UTC)
    outcomes: list[WitnessOutcome] = []
    for witness_id in sorted({w for p in policies.values() for w in p.witnesses}):
        follows = {a: d for a, d in logs.items() if witness_id in _policy_of(policies, a)}
        provider = providers.get(witness_id)
        if not follows or provider is None:
            continue
        witness = Witness(
            ah.witness_dir(witness_id), signer=AgencyNoteSigner(provider, at=now), trust=trust,
            logs=follows,
        )  # fmt: skip
        outcomes += witness_logs(witness, follows, now=now)
    return outcomes


def _policy_of(policies: dict[str, WitnessPolicy], agency: str) -> frozenset[str]:
    policy = policies.get(agency.split("-", 1)[0])
    return frozenset() if policy is None else policy.witnesses
