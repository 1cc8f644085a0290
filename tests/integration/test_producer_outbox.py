"""The producer's durable outbox against a broker the test stops, restarts and outlives.

The module starts its own one-node cluster (the session broker is shared, so it cannot be
stopped). Each test publishes with a short delivery timeout, takes the broker away in the
middle, keeps publishing, brings it back and then consumes as the recipient: every record
the producer accepted must be in the sink exactly once, none quarantined, and the sender's
audit log must hold one ``publish`` entry per envelope at the position Kafka gave it.

Run as a script (``python -m tests.integration.test_producer_outbox child ...``) this module
is the publishing process the SIGKILL test kills.
"""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO

import pytest
from confluent_kafka.admin import AdminClient

from exchange.audit.agency import AgencyAudit
from exchange.audit.codec import decode_entry
from exchange.audit.entry import EntryKind, KafkaPosition, Outcome
from exchange.audit.log import AuditLog
from exchange.broker import ensure_cluster, find_free_base_port, kill_node, start_node, stop_cluster
from exchange.crypto import verify
from exchange.crypto.pki import FileKeyProvider, Passphrase, PkiLayout, TrustStore
from exchange.errors import BrokerError, ExchangeError, OutboxFullError, SpooledError
from exchange.metrics import ExchangeMetrics
from exchange.producers import SecureProducer
from exchange.producers.outbox import SETTLED_FILE, SETTLED_MAGIC, Outbox
from exchange.producers.secure import exchange_topic_spec
from exchange.quarantine import read_quarantine
from exchange.records import ExchangeRecord
from exchange.records.sample import generate_corpus
from exchange.routing import RoutingRule, RoutingTable, exchange_topic, reach_for
from exchange.sinks import open_sink
from exchange.topics import TopicSpec, ensure_topics
from tests.integration.conftest import WaitUntil
from tests.integration.secure_fixtures import (  # noqa: F401  # fixtures are imported explicitly, by name
    AGENCIES,
    PASSPHRASE,
    Pki,
    consume_until,
    new_prefix,
    pki,
    raw_messages,
    readdressed,
    topics_under,
)

SENDER, RECIPIENT = "MEX-FGR", "USA-ATF"
#: librdkafka gives up on an envelope after this long: the outage must outlast it.
DELIVERY_TIMEOUT_MS = 3000
NODE = 1


@dataclass(frozen=True)
class OwnBroker:
    home: Path
    bootstrap: str


@pytest.fixture(scope="module")
def own_broker(
    kafka_libs_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OwnBroker]:
    """A one-node cluster of this module alone, which its tests stop and restart."""
    home = tmp_path_factory.mktemp("outbox-broker")
    try:
        info = ensure_cluster(
            home, nodes=1, base_port=find_free_base_port(1), libs_cache=kafka_libs_cache
        )
    except ExchangeError as exc:
        stop_cluster(home)
        pytest.fail(f"the test's Kafka broker did not start: {exc.diagnostics()}")
    try:
        yield OwnBroker(home, info.bootstrap)
    finally:
        stop_cluster(home)


def _records(seed: int, cases: int) -> list[ExchangeRecord]:
    corpus = generate_corpus(seed, cases=cases)
    return [readdressed(r, SENDER, RECIPIENT) for r in corpus.records()]


def _routing() -> RoutingTable:
    return RoutingTable(rules=[RoutingRule(senders=["*"], recipients=list(AGENCIES))])


def _producer(
    keys: FileKeyProvider,
    trust: TrustStore,
    bootstrap: str,
    prefix: str,
    *,
    outbox: Outbox | Path,
    audit: AgencyAudit,
    metrics: ExchangeMetrics,
) -> SecureProducer:
    return SecureProducer(
        bootstrap=bootstrap, sender=keys, trust=trust, routing=_routing(), topic_prefix=prefix,
        linger=timedelta(milliseconds=5), audit=audit, outbox=outbox, metrics=metrics,
        config_overrides={"delivery.timeout.ms": DELIVERY_TIMEOUT_MS},
    )  # fmt: skip


def _spooled_total(metrics: ExchangeMetrics) -> float:
    value = metrics.registry.get_sample_value(
        "exchange_outbox_spooled_envelopes_total", {"sender": SENDER}
    )
    return value or 0.0


@dataclass(frozen=True)
class Landed:
    """What the topics hold and what the recipient's sink made of it."""

    messages: int
    stored: int
    duplicates: int
    #: second copies of a stored envelope at another offset, quarantined as ``replay``
    replayed: int


def _consume_and_check(
    pki: Pki,  # noqa: F811
    bootstrap: str,
    prefix: str,
    *,
    accepted: list[ExchangeRecord],
    sink_path: Path,
    audit_dir: Path,
) -> Landed:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    on_topics = [m for t in topics_under(admin, prefix) for m in raw_messages(bootstrap, t)]
    with open_sink(f"sqlite:{sink_path}") as sink:
        summary = consume_until(pki, bootstrap, prefix, RECIPIENT, sink, messages=len(on_topics))
        stored = list(sink.records())
    wanted = {r.meta.record_id for r in accepted}
    if len(stored) != len(wanted):
        on_ids = {str(verify(m.value, trust=pki.trust).message_id) for m in on_topics}
        missing = on_ids - {r.message_id for r in stored}
        quarantined = list(read_quarantine(bootstrap, RECIPIENT, topic_prefix=prefix))
        pytest.fail(
            f"stored {len(stored)} of {len(wanted)}; {len(on_topics)} on the topics, "
            f"{len(missing)} of them not stored; consumer {summary}; quarantine {quarantined}"
        )
    assert {r.record_id for r in stored} == wanted
    assert summary.delivered == len(wanted)
    # A copy beyond the first of an envelope (the same bytes at another offset: sent again
    # after its delivery report was lost) is stored once; the consumer cannot tell it from
    # an injected copy, so it quarantines it as `replay` naming the original. Nothing else
    # may be refused.
    replayed = summary.quarantined.get("replay", 0)
    assert set(summary.quarantined) <= {"replay"}
    assert summary.duplicates + replayed == len(on_topics) - len(wanted)
    stored_ids = {r.message_id for r in stored}
    refused = list(read_quarantine(bootstrap, RECIPIENT, topic_prefix=prefix))
    assert len(refused) == replayed
    assert all(q.reason == "replay" and q.message_id in stored_ids for q in refused)
    # The sender's log: one ok publish entry per envelope, at the position Kafka gave it;
    # only a second copy of an envelope already logged may lack one.
    with AuditLog.open(audit_dir, agency_id=SENDER) as log:
        entries = [decode_entry(log.entry_bytes(i)) for i in range(log.size)]
    published = {
        e.position: e.message_id
        for e in entries
        if e.kind is EntryKind.PUBLISH and e.outcome is Outcome.OK and e.position is not None
    }
    assert not [e for e in entries if e.kind is EntryKind.PUBLISH and e.outcome is Outcome.FAILED]
    positions = {
        KafkaPosition(m.topic, m.partition, m.offset): verify(m.value, trust=pki.trust).message_id
        for m in on_topics
    }
    assert all(positions.get(p) == mid for p, mid in published.items())
    assert set(published.values()) == set(positions.values())
    assert len(published) >= len(wanted)
    return Landed(len(on_topics), len(stored), summary.duplicates, replayed)


def test_records_published_through_a_broker_outage_are_spooled_then_drained_exactly_once(
    *,
    own_broker: OwnBroker,
    pki: Pki,  # noqa: F811
    wait_until: WaitUntil,
    tmp_path: Path,
) -> None:
    prefix = new_prefix()
    records = _records(2031, cases=90)
    third = len(records) // 3
    before, during, late = records[:third], records[third : 2 * third], records[2 * third :]
    metrics = ExchangeMetrics()
    audit_dir = tmp_path / "audit"
    keys = pki.keys(SENDER)
    with AgencyAudit.open(audit_dir, keys) as audit:
        producer = _producer(
            keys, pki.trust, own_broker.bootstrap, prefix, outbox=tmp_path / "outbox",
            audit=audit, metrics=metrics,
        )  # fmt: skip
        for record in before:
            producer.publish(record)
        assert producer.flush(timeout=60).delivered == len(before)

        kill_node(own_broker.home, NODE, signal.SIGTERM)
        down_at = time.monotonic()
        for record in during:
            producer.publish(record)
            producer.poll(0)

        def spooling() -> bool:
            producer.poll(0.1)
            return _spooled_total(metrics) > 0

        wait_until(spooling, timeout=60, message="the producer spools to its outbox")
        for record in late:  # the cluster is still away: these go only to disk
            producer.publish(record)
            producer.poll(0)
        with pytest.raises(SpooledError) as caught:
            producer.flush(timeout=1)
        assert caught.value.spooled == len(during) + len(late)
        assert producer.summary.spooled == len(during) + len(late)
        assert producer.summary.delivered == len(before)

        start_node(own_broker.home, NODE)
        up_at = time.monotonic()
        summary = producer.flush(timeout=120)
        drained_at = time.monotonic()
        producer.close()
    assert summary.failed == []
    assert summary.spooled == 0
    assert summary.delivered == len(records)
    assert summary.drained == len(during) + len(late)
    assert _spooled_total(metrics) == len(during) + len(late)

    landed = _consume_and_check(
        pki, own_broker.bootstrap, prefix, accepted=records, sink_path=tmp_path / "atf.db",
        audit_dir=audit_dir,
    )  # fmt: skip
    _report(
        "outage",
        records=len(records),
        outage_s=round(up_at - down_at, 1),
        spooled=int(_spooled_total(metrics)),
        drained=summary.drained,
        drain_s=round(drained_at - up_at, 2),
        on_topics=landed.messages,
        stored=landed.stored,
        duplicates=landed.duplicates,
        replayed=landed.replayed,
    )


def test_producer_sigkilled_while_spooling_restarts_and_drains_its_outbox(
    *,
    own_broker: OwnBroker,
    pki: Pki,  # noqa: F811
    tmp_path: Path,
) -> None:
    prefix = new_prefix()
    seed, cases = 2032, 60
    records = _records(seed, cases)
    half = len(records) // 2
    outbox_dir, audit_dir = tmp_path / "outbox", tmp_path / "audit"
    child = subprocess.Popen(  # this module, run with this interpreter
        [
            sys.executable, "-m", "tests.integration.test_producer_outbox", "child",
            str(pki.home), own_broker.bootstrap, prefix, str(outbox_dir), str(audit_dir),
            str(seed), str(cases),
        ],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        first = _line(child.stdout)
        if first == f"delivered {half}":
            kill_node(own_broker.home, NODE, signal.SIGTERM)
            child.stdin.write("go\n")
            child.stdin.flush()
        # The child prints once every record is in its outbox and it has begun spooling.
        second = _line(child.stdout)
    finally:
        child.send_signal(signal.SIGKILL)
        _, stderr = child.communicate(timeout=30)
    assert (first, second) == (f"delivered {half}", f"spooling {len(records) - half}"), stderr
    assert child.returncode == -signal.SIGKILL

    start_node(own_broker.home, NODE)
    up_at = time.monotonic()
    metrics = ExchangeMetrics()
    keys = pki.keys(SENDER)
    with AgencyAudit.open(audit_dir, keys) as audit, Outbox(outbox_dir) as outbox:
        assert outbox.pending == len(records) - half
        producer = _producer(
            keys, pki.trust, own_broker.bootstrap, prefix, outbox=outbox, audit=audit,
            metrics=metrics,
        )  # fmt: skip
        summary = producer.flush(timeout=120)
        drained_at = time.monotonic()
        producer.close()
        assert outbox.pending == 0
    assert summary.failed == []
    assert summary.delivered == summary.drained == len(records) - half
    landed = _consume_and_check(
        pki, own_broker.bootstrap, prefix, accepted=records, sink_path=tmp_path / "atf.db",
        audit_dir=audit_dir,
    )  # fmt: skip
    _report(
        "sigkill",
        records=len(records),
        spooled_at_kill=len(records) - half,
        drained=summary.drained,
        drain_s=round(drained_at - up_at, 2),
        on_topics=landed.messages,
        stored=landed.stored,
        duplicates=landed.duplicates,
        replayed=landed.replayed,
    )


def test_envelope_the_broker_refuses_for_good_is_a_failure_not_spooled(
    *,
    own_broker: OwnBroker,
    pki: Pki,  # noqa: F811
    tmp_path: Path,
) -> None:
    prefix = new_prefix()
    (record,) = [r for r in _records(2033, cases=3) if r.record_type_name == "seizure"][:1]
    topic = exchange_topic(SENDER, reach_for(SENDER, {RECIPIENT}), "seizure", prefix=prefix)
    # A topic whose messages may not exceed 200 bytes: every envelope is larger, and the
    # broker answers MESSAGE_TOO_LARGE, which no retry can fix.
    spec = exchange_topic_spec(topic)
    ensure_topics(
        own_broker.bootstrap,
        [
            TopicSpec(
                topic,
                partitions=spec.partitions,
                config={**spec.config, "max.message.bytes": "200"},
            )
        ],
    )
    metrics = ExchangeMetrics()
    keys = pki.keys(SENDER)
    with AgencyAudit.open(tmp_path / "audit", keys) as audit, Outbox(tmp_path / "outbox") as outbox:
        producer = _producer(
            keys, pki.trust, own_broker.bootstrap, prefix, outbox=outbox, audit=audit,
            metrics=metrics,
        )  # fmt: skip
        producer.publish(record)
        with pytest.raises(BrokerError, match="not delivered") as caught:
            producer.close(timeout=60)
        assert not isinstance(caught.value, SpooledError)
        assert outbox.pending == 0
    assert len(producer.summary.failed) == 1
    assert producer.summary.delivered == 0
    assert _spooled_total(metrics) == 0
    with AuditLog.open(tmp_path / "audit", agency_id=SENDER) as log:
        entries = [decode_entry(log.entry_bytes(i)) for i in range(log.size)]
    assert [(e.kind, e.outcome) for e in entries] == [(EntryKind.PUBLISH, Outcome.FAILED)]


def test_publish_refuses_records_once_the_outbox_is_full_and_delivers_every_accepted_one(
    *,
    own_broker: OwnBroker,
    pki: Pki,  # noqa: F811
    tmp_path: Path,
) -> None:
    prefix = new_prefix()
    records = [r for r in _records(2034, cases=60) if r.record_type_name == "seizure"]
    keys = pki.keys(SENDER)
    audit_dir = tmp_path / "audit"
    with socket.socket() as s:  # a port nobody listens on: the brokers are unreachable
        s.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{s.getsockname()[1]}"
    accepted: list[ExchangeRecord] = []
    with AgencyAudit.open(audit_dir, keys) as audit:
        with Outbox(tmp_path / "outbox", max_bytes=24_000, segment_bytes=6_000) as outbox:
            producer = _producer(
                keys, pki.trust, nowhere, prefix, outbox=outbox, audit=audit,
                metrics=ExchangeMetrics(),
            )  # fmt: skip
            refused = None
            for record in records:
                try:
                    producer.publish(record)
                except OutboxFullError:
                    refused = record
                    break
                accepted.append(record)
                producer.poll(0)
            assert refused is not None, f"the outbox never filled with {len(records)} records"
            assert producer.summary.accepted == len(accepted)
            with pytest.raises(SpooledError) as caught:
                producer.close(timeout=1)
            assert caught.value.spooled == len(accepted)
            assert outbox.size_bytes >= outbox.max_bytes
        # A later producer on the same outbox, the cluster reachable: it creates the topic
        # the first could not and delivers every accepted envelope.
        metrics = ExchangeMetrics()
        producer = _producer(
            keys, pki.trust, own_broker.bootstrap, prefix, outbox=tmp_path / "outbox",
            audit=audit, metrics=metrics,
        )  # fmt: skip
        began = time.monotonic()
        summary = producer.flush(timeout=120)
        drained_at = time.monotonic()
        producer.close()
    assert summary.delivered == summary.drained == len(accepted)
    landed = _consume_and_check(
        pki, own_broker.bootstrap, prefix, accepted=accepted, sink_path=tmp_path / "atf.db",
        audit_dir=audit_dir,
    )  # fmt: skip
    assert refused.meta.record_id not in {r.meta.record_id for r in accepted}
    _report(
        "full",
        accepted=len(accepted),
        refused_at=len(accepted) + 1,
        drained=summary.drained,
        drain_s=round(drained_at - began, 2),
        on_topics=landed.messages,
        duplicates=landed.duplicates,
        replayed=landed.replayed,
    )


def test_envelopes_resent_after_a_lost_low_water_mark_are_stored_once_copies_quarantined(
    *,
    own_broker: OwnBroker,
    pki: Pki,  # noqa: F811
    tmp_path: Path,
) -> None:
    prefix = new_prefix()
    records = _records(2035, cases=15)
    keys = pki.keys(SENDER)
    outbox_dir, audit_dir = tmp_path / "outbox", tmp_path / "audit"
    with AgencyAudit.open(audit_dir, keys) as audit:
        producer = _producer(
            keys, pki.trust, own_broker.bootstrap, prefix, outbox=outbox_dir, audit=audit,
            metrics=ExchangeMetrics(),
        )  # fmt: skip
        for record in records:
            producer.publish(record)
        assert producer.flush(timeout=60).delivered == len(records)
        producer.close()
        # The crash window: every envelope delivered, the low-water mark not yet persisted.
        # SETTLED is the only file that changes then; put back the one of an empty outbox.
        body = SETTLED_MAGIC + (0).to_bytes(8, "big")
        (outbox_dir / SETTLED_FILE).write_bytes(body + hashlib.sha256(body).digest()[:16])
        producer = _producer(
            keys, pki.trust, own_broker.bootstrap, prefix, outbox=outbox_dir, audit=audit,
            metrics=ExchangeMetrics(),
        )  # fmt: skip
        summary = producer.flush(timeout=60)
        producer.close()
    assert summary.delivered == summary.drained == len(records)
    admin = AdminClient({"bootstrap.servers": own_broker.bootstrap})
    copies: dict[object, list[bytes]] = {}
    for t in topics_under(admin, prefix):
        for m in raw_messages(own_broker.bootstrap, t):
            copies.setdefault(verify(m.value, trust=pki.trust).message_id, []).append(m.value)
    # Sent again byte for byte: same message id, same signature, same sequence.
    assert len(copies) == len(records)
    assert all(len(v) == 2 and v[0] == v[1] for v in copies.values())
    landed = _consume_and_check(
        pki, own_broker.bootstrap, prefix, accepted=records, sink_path=tmp_path / "atf.db",
        audit_dir=audit_dir,
    )  # fmt: skip
    assert landed.replayed == len(records)
    _report(
        "resent",
        records=len(records),
        on_topics=landed.messages,
        stored=landed.stored,
        duplicates=landed.duplicates,
        replayed=landed.replayed,
    )


def _line(stream: IO[str]) -> str:
    # Bounded by the child's own deadlines (its flush timeouts and the wait for "go").
    return stream.readline().strip()


def _report(test: str, **figures: object) -> None:
    # Figures for docs/reliability.md; visible with `pytest -s` or in the captured output.
    print(f"outbox-figures {test} {json.dumps(figures)}")


def _child(argv: list[str]) -> None:
    """Publish half the records, wait for "go" (the broker is being stopped), publish the
    rest, report once they are all spooled, then keep flushing until killed."""
    home, bootstrap, prefix, outbox, audit_dir, seed, cases = argv
    trust = TrustStore.load(Path(home))
    keys = FileKeyProvider(
        PkiLayout(Path(home)), SENDER, Passphrase(PASSPHRASE.encode()), trust=trust
    )
    records = _records(int(seed), int(cases))
    half = len(records) // 2
    metrics = ExchangeMetrics()
    with AgencyAudit.open(Path(audit_dir), keys) as audit:
        producer = _producer(
            keys, trust, bootstrap, prefix, outbox=Path(outbox), audit=audit, metrics=metrics
        )
        for record in records[:half]:
            producer.publish(record)
        print(f"delivered {producer.flush(timeout=60).delivered}", flush=True)
        if sys.stdin.readline().strip() != "go":
            return
        for record in records[half:]:
            producer.publish(record)
            producer.poll(0)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                producer.flush(timeout=0.5)
            except SpooledError as exc:
                if _spooled_total(metrics) > 0:
                    print(f"spooling {exc.spooled}", flush=True)
                    sys.stdin.readline()  # blocks until the test kills this process
                    return


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        _child(sys.argv[2:])
