"""Fixtures and helpers for the secure-exchange tests on the real broker.

Import the fixtures a module uses explicitly (``from secure_fixtures import pki, ...``), so a
reader sees where they come from. Every test gets its own topic prefix: tests never see each
other's topics, consumer groups or quarantines.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from exchange.audit import Witness, WitnessPolicy
from exchange.audit.agency import AgencyAudit
from exchange.audit.note import AgencyNoteSigner
from exchange.audit.witnessing import (
    AuditHome,
    WitnessOutcome,
    witness_logs,
    write_witness_policies,
)
from exchange.audit_bus import AuditTopicWriter, collect_receipts_from_bus
from exchange.cli import main
from exchange.consumers.secure import ConsumeSummary, SecureConsumer
from exchange.crypto.pki import (
    DEMO_AGENCIES,
    FileKeyProvider,
    Passphrase,
    PkiLayout,
    TrustStore,
    bootstrap_demo_pki,
)
from exchange.producers.secure import PublishSummary, SecureProducer
from exchange.records import ExchangeRecord, agency_country, record_type
from exchange.routing import RoutingRule, RoutingTable
from exchange.sinks import Sink, open_sink

__all__ = [
    "PASSPHRASE",
    "AuditedRun",
    "Pki",
    "RawMessage",
    "audited_exchange",
    "cli_env",
    "consume_until",
    "new_prefix",
    "pki",
    "produce_raw",
    "publish",
    "raw_messages",
    "readdressed",
    "topic_prefix",
    "topics_under",
    "verify_audit",
]

#: Test-only passphrase of the session's key store (a real one comes from a file).
PASSPHRASE = "integration tests only, not a secret"  # noqa: S105  # protects test keys only

#: Every agency the sample generator uses as an originator, besides the demo six
#: (exchange/records/_sample_data.py): records may name any of them.
SAMPLE_AGENCIES = ("MEX-FGJ-CHIH", "MEX-FGJ-SON", "MEX-FGJ-TAMPS", "USA-EPPD", "USA-TPD")
AGENCIES = (*DEMO_AGENCIES, *SAMPLE_AGENCIES)

#: Longest a consumer may take to see what the test published (group join included).
CONSUME_TIMEOUT_S = 60.0

# Short linger: tests publish a few records and flush; a long linger only adds wall time.
_LINGER = timedelta(milliseconds=5)


@dataclass(frozen=True)
class Pki:
    """The session's ``EXCHANGE_HOME`` with both countries' roots and every agency."""

    home: Path
    trust: TrustStore
    passphrase: Passphrase

    def keys(self, agency: str) -> FileKeyProvider:
        """``agency``'s key provider, sharing the session's trust store."""
        return FileKeyProvider(PkiLayout(self.home), agency, self.passphrase, trust=self.trust)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Roots and agency keys for the session (scrypt lowered: these keys protect nothing)."""
    home = tmp_path_factory.mktemp("secure-home")
    passphrase = Passphrase(PASSPHRASE.encode())
    trust = bootstrap_demo_pki(home, passphrase, agencies=AGENCIES, scrypt_log2_n=12)
    return Pki(home, trust, passphrase)


def new_prefix() -> str:
    """A fresh topic prefix (``t<hex>.``), valid for :func:`exchange.routing.check_prefix`."""
    return f"t{uuid.uuid4().hex[:12]}."


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix of this test alone."""
    return new_prefix()


def cli_env(pki: Pki, bootstrap: str, prefix: str, **extra: str) -> dict[str, str]:
    """``EXCHANGE_*`` variables that point the CLI at the session's PKI, broker and prefix."""
    return {
        "EXCHANGE_HOME": str(pki.home),
        "EXCHANGE_BOOTSTRAP": bootstrap,
        "EXCHANGE_TOPIC_PREFIX": prefix,
        "EXCHANGE_PKI_PASSPHRASE": PASSPHRASE,
        **extra,
    }


def readdressed(record: ExchangeRecord, sender: str, recipient: str) -> ExchangeRecord:
    """``record`` as originated by ``sender`` and released to ``recipient`` alone.

    The sample generator ties each family to its natural direction (trace requests go to
    ATF); the tests need every family in both directions with a known recipient.
    """
    rtype = record_type(type(record).record_type_name)
    data = json.loads(rtype.to_json(record))
    handling = data["handling"]
    handling["originator"] = {"agencyId": sender, "country": agency_country(sender)}
    handling["releasableTo"] = sorted({agency_country(sender), agency_country(recipient)})
    handling["releasableToAgencies"] = [recipient]
    return rtype.from_json(json.dumps(data))


def publish(
    pki: Pki,
    bootstrap: str,
    prefix: str,
    sender: str,
    records: Iterable[ExchangeRecord],
) -> PublishSummary:
    """Publish ``records`` as ``sender`` (routing: anyone; each record's handling decides)."""
    routing = RoutingTable(rules=[RoutingRule(senders=["*"], recipients=list(AGENCIES))])
    with SecureProducer(
        bootstrap=bootstrap, sender=pki.keys(sender), trust=pki.trust, routing=routing,
        topic_prefix=prefix, linger=_LINGER,
    ) as producer:  # fmt: skip
        for record in records:
            producer.publish(record)
    return producer.summary


def consume_until(
    pki: Pki,
    bootstrap: str,
    prefix: str,
    agency: str,
    sink: Sink,
    *,
    messages: int,
) -> ConsumeSummary:
    """Consume as ``agency`` until ``messages`` messages were handled (any outcome).

    Fails the test when they do not all arrive within :data:`CONSUME_TIMEOUT_S`. The group
    is per prefix and agency, so a second call resumes where the sink says.
    """
    deadline = time.monotonic() + CONSUME_TIMEOUT_S
    with SecureConsumer(
        bootstrap=bootstrap, recipient=pki.keys(agency), trust=pki.trust, sink=sink,
        group_id=f"{prefix}{agency}", topic_prefix=prefix, batch_size=100,
    ) as consumer:  # fmt: skip

        def handled() -> int:
            s = consumer.summary
            return s.delivered + s.duplicates + s.not_addressed + s.quarantined_total

        summary = consumer.run(
            should_stop=lambda: handled() >= messages or time.monotonic() > deadline,
            poll_timeout=0.2,
        )
    if handled() < messages:
        pytest.fail(f"{agency} handled {handled()} of {messages} messages: {summary}")
    return summary


@dataclass(frozen=True)
class RawMessage:
    """One message as it sits on a topic: bytes nobody verified."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def raw_messages(bootstrap: str, topic: str) -> list[RawMessage]:
    """Every message of ``topic`` from the beginning, with a plain (unverifying) consumer."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"raw-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        described = consumer.list_topics(topic, timeout=30).topics[topic]
        partitions = set(described.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        found = [
            RawMessage(
                topic, msg.partition() or 0, msg.offset() or 0, msg.key(), msg.value() or b""
            )
            for msg in _until_eof(consumer, partitions)
        ]
        return sorted(found, key=lambda m: (m.partition, m.offset))
    finally:
        consumer.close()


def _until_eof(consumer: Consumer, partitions: set[int]) -> Iterator[Message]:
    deadline = time.monotonic() + CONSUME_TIMEOUT_S
    while partitions:
        if time.monotonic() > deadline:
            pytest.fail("raw read of the topic did not reach its end")
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        error = msg.error()
        if error is not None:
            assert error.code() == KafkaError._PARTITION_EOF, error.str()
            partitions.discard(msg.partition())
            continue
        yield msg


def produce_raw(
    bootstrap: str, message: RawMessage, *, value: bytes, topic: str | None = None
) -> int:
    """Write ``value`` as ``message`` was written (same key and partition, or to ``topic``);
    return the new offset. This is what an attacker with write access to the topic does."""
    producer = Producer({"bootstrap.servers": bootstrap})
    offsets: list[int] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        offsets.append(msg.offset() or 0)

    producer.produce(
        topic or message.topic, value=value, key=message.key,
        partition=message.partition if topic is None else 0, on_delivery=delivered,
    )  # fmt: skip
    assert producer.flush(30) == 0
    return offsets[0]


def topics_under(admin: AdminClient, prefix: str) -> list[str]:
    """Every topic whose name starts with ``prefix``."""
    return sorted(t for t in admin.list_topics(timeout=30).topics if t.startswith(prefix))


# -- the audit trail ------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditedRun:
    """An exchange run with audit on: ``home`` holds ``pki/trust`` (public) and ``audit/``."""

    home: Path
    prefix: str
    bootstrap: str
    sent: dict[str, list[ExchangeRecord]]  # sender -> records

    @property
    def audit(self) -> AuditHome:
        return AuditHome(self.home / "audit")


def audited_exchange(
    pki: Pki,
    bootstrap: str,
    home: Path,
    flows: dict[tuple[str, str], list[ExchangeRecord]],
    *,
    prefix: str | None = None,
    witness: bool = True,
) -> AuditedRun:
    """Publish ``flows`` ((sender, recipient) -> records, each readdressed to the recipient)
    with audit on, consume as each recipient, collect receipts, then let the other country's
    demo agencies witness every log (quorum 2), as ``exchange demo`` does."""
    prefix = prefix or new_prefix()
    shutil.copytree(PkiLayout(pki.home).trust_dir, PkiLayout(home).trust_dir)
    ah = AuditHome(home / "audit")
    write_witness_policies(
        ah.policy_path,
        {
            "MEX": WitnessPolicy(frozenset(a for a in DEMO_AGENCIES if a.startswith("USA")), 2),
            "USA": WitnessPolicy(frozenset(a for a in DEMO_AGENCIES if a.startswith("MEX")), 2),
        },
    )
    routing = RoutingTable(rules=[RoutingRule(senders=["*"], recipients=list(AGENCIES))])
    sent: dict[str, list[ExchangeRecord]] = {}
    for (sender, recipient), records in flows.items():
        sent.setdefault(sender, []).extend(readdressed(r, sender, recipient) for r in records)
    for sender, records in sent.items():
        with _audit(pki, bootstrap, ah, sender, prefix) as audit, SecureProducer(
            bootstrap=bootstrap, sender=pki.keys(sender), trust=pki.trust, routing=routing,
            topic_prefix=prefix, linger=_LINGER, audit=audit,
        ) as producer:  # fmt: skip
            for record in records:
                producer.publish(record)
    recipients = sorted({r for _, r in flows})
    for recipient in recipients:
        count = sum(len(v) for (_, r), v in flows.items() if r == recipient)
        with (
            _audit(pki, bootstrap, ah, recipient, prefix) as audit,
            open_sink(f"sqlite:{home / f'{recipient}.db'}") as sink,
        ):
            _consume_audited(pki, bootstrap, prefix, recipient, sink=sink, audit=audit, count=count)
    for sender in sent:
        with _audit(pki, bootstrap, ah, sender, prefix) as audit:
            collect_receipts_from_bus(
                audit, bootstrap=bootstrap, trust=pki.trust, topic_prefix=prefix
            )
    if witness:
        witness_all(pki, ah)
    return AuditedRun(home, prefix, bootstrap, sent)


def witness_all(pki: Pki, ah: AuditHome) -> list[WitnessOutcome]:
    """Every demo agency witnesses the other country's logs; refusals are returned."""
    outcomes: list[WitnessOutcome] = []
    logs = ah.logs()
    for witness_id in DEMO_AGENCIES:
        follows = {a: d for a, d in logs.items() if a[:3] != witness_id[:3]}
        if not follows:
            continue
        now = datetime.now(UTC)
        w = Witness(
            ah.witness_dir(witness_id), signer=AgencyNoteSigner(pki.keys(witness_id), at=now),
            trust=pki.trust, logs=follows,
        )  # fmt: skip
        outcomes += witness_logs(w, follows, now=now)
    return outcomes


def _audit(pki: Pki, bootstrap: str, ah: AuditHome, agency: str, prefix: str) -> AgencyAudit:
    writer = AuditTopicWriter(bootstrap=bootstrap, agency_id=agency, topic_prefix=prefix)
    return AgencyAudit.open(ah.log_dir(agency), pki.keys(agency), publisher=writer)


def _consume_audited(
    pki: Pki,
    bootstrap: str,
    prefix: str,
    agency: str,
    *,
    sink: Sink,
    audit: AgencyAudit,
    count: int,
) -> None:
    deadline = time.monotonic() + CONSUME_TIMEOUT_S
    with SecureConsumer(
        bootstrap=bootstrap, recipient=pki.keys(agency), trust=pki.trust, sink=sink,
        group_id=f"{prefix}{agency}", topic_prefix=prefix, batch_size=100, audit=audit,
    ) as consumer:  # fmt: skip
        consumer.run(
            should_stop=lambda: consumer.summary.delivered >= count or time.monotonic() > deadline,
            poll_timeout=0.2,
        )
    if consumer.summary.delivered < count:
        pytest.fail(f"{agency} stored {consumer.summary.delivered} of {count}")


def verify_audit(
    run: AuditedRun,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
) -> tuple[int, list[dict[str, str]]]:
    """``exchange audit verify --json`` on ``run``: the exit code and the findings."""
    monkeypatch.setenv("EXCHANGE_HOME", str(run.home))
    monkeypatch.setenv("EXCHANGE_BOOTSTRAP", run.bootstrap)
    monkeypatch.setenv("EXCHANGE_TOPIC_PREFIX", run.prefix)
    capsys.readouterr()
    code = main(["audit", "verify", "--json", *extra])
    out = capsys.readouterr().out
    findings: list[dict[str, str]] = json.loads(out)["findings"] if out.strip() else []
    return code, findings
