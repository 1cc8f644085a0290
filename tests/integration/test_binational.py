"""The binational deployment on real clusters: TLS, SCRAM, ACLs and MirrorMaker 2.

One session-scoped profile (:mod:`tests.integration.binational_fixtures`) serves every test:
a MEX and a USA cluster, each with only TLS listeners and deny-by-default ACLs derived from
need-to-know routing, and a mirror per direction.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._acl import AclBindingFilter, AclOperation, AclPermissionType
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType

from exchange.consumers.secure import SecureConsumer
from exchange.deploy import (
    AuthenticationFailedError,
    DeployLayout,
    apply_country,
    init_deployment,
    probe,
)
from exchange.deploy.tls import new_transport_ca
from exchange.errors import BrokerError
from exchange.kafka_clients import broker_error
from exchange.producers.secure import SecureProducer
from exchange.records import ExchangeRecord, record_type
from exchange.records.sample import generate_corpus
from exchange.routing import Reach, exchange_topic
from exchange.sinks import open_sink
from exchange.topics import TopicSpec, ensure_topics
from tests.integration.binational_fixtures import ROUTING, Binational, binational  # noqa: F401
from tests.integration.conftest import WaitUntil
from tests.integration.secure_fixtures import Pki, pki, readdressed  # noqa: F401

SEIZURES = exchange_topic("MEX-FGR", Reach.CROSS_BORDER, "seizure")
#: MirrorMaker 2 needs 10-40 s for the first records of a new topic on 2 cores, and the
#: consumer's pattern subscription up to its metadata refresh to see the topic.
CROSSING_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def crossed(binational: Binational, pki: Pki) -> list[ExchangeRecord]:  # noqa: F811
    """Three seizures MEX-FGR published on the MEX cluster, addressed to USA-ATF."""
    records = [readdressed(r, "MEX-FGR", "USA-ATF") for r in generate_corpus(61, cases=3).seizures]
    conn = binational.connect("MEX-FGR")
    with SecureProducer(
        bootstrap=conn.bootstrap, sender=pki.keys("MEX-FGR"), trust=pki.trust, routing=ROUTING,
        config_overrides=conn.config,
    ) as producer:  # fmt: skip
        for record in records:
            producer.publish(record)
    assert producer.summary.accepted == len(records)
    return records


def test_record_crosses_the_border_verified_and_decrypted(
    binational: Binational,  # noqa: F811
    pki: Pki,  # noqa: F811
    crossed: list[ExchangeRecord],
    tmp_path: Path,
) -> None:
    # USA-ATF authenticates with SCRAM on its own (USA) cluster; the records were written
    # to the MEX cluster and only MirrorMaker 2 can have carried them over.
    conn = binational.connect("USA-ATF", scram=True)
    assert conn.bootstrap == binational.info.plan.ports["USA"].sasl_bootstrap
    deadline = time.monotonic() + CROSSING_TIMEOUT_S
    with open_sink(f"sqlite:{tmp_path / 'atf.db'}") as sink:
        with SecureConsumer(
            bootstrap=conn.bootstrap, recipient=pki.keys("USA-ATF"), trust=pki.trust, sink=sink,
            # Tests wait for the mirrored topic to appear; 2 s instead of the default 30 s.
            config_overrides={**conn.config, "topic.metadata.refresh.interval.ms": 2000},
        ) as consumer:  # fmt: skip
            summary = consumer.run(
                should_stop=lambda: (
                    consumer.summary.delivered >= len(crossed) or time.monotonic() > deadline
                ),
                poll_timeout=0.2,
            )
        stored = list(sink.records())
    assert summary.delivered == len(crossed), f"not all records crossed in time: {summary}"
    assert {r.record_id for r in stored} == {r.meta.record_id for r in crossed}
    assert {r.sender for r in stored} == {"MEX-FGR"}
    assert {r.topic for r in stored} == {SEIZURES}  # IdentityReplicationPolicy kept the name
    assert summary.quarantined_total == 0


def test_mirrored_copy_holds_no_plaintext_field(
    binational: Binational,  # noqa: F811
    crossed: list[ExchangeRecord],
    wait_until: WaitUntil,
) -> None:
    # What a USA operator (a super user of the USA cluster) or a network sniffer between
    # the mirror and the cluster can read: the bytes of the mirrored topic.
    admin = binational.admin("USA")
    wait_until(
        lambda: len(_raw_values(admin, SEIZURES)) >= len(crossed),
        timeout=CROSSING_TIMEOUT_S,
        message=f"{len(crossed)} records are on the mirrored {SEIZURES}",
    )
    raw = b"\n".join(_raw_values(admin, SEIZURES))
    needles = [n for record in crossed for n in _sensitive_strings(record)]
    assert any("serialNumber" in kind for kind, _ in needles)
    assert any("narrative" in kind for kind, _ in needles)
    leaked = [(kind, text) for kind, text in needles if text.encode() in raw]
    assert leaked == []


def test_agency_cannot_write_another_agencys_topic(
    binational: Binational,  # noqa: F811
    pki: Pki,  # noqa: F811
) -> None:
    fgr, sspc = binational.connect("MEX-FGR"), binational.connect("MEX-SSPC")
    # The topic exists (its owner may create it); MEX-SSPC may read it but never write it.
    ensure_topics(fgr.bootstrap, [TopicSpec(SEIZURES)], admin_config=fgr.config)
    record = readdressed(generate_corpus(62, cases=1).seizures[0], "MEX-FGR", "USA-ATF")
    # MEX-SSPC holding a stolen FGR signing key still cannot put it on FGR's topic.
    with pytest.raises(BrokerError, match="TOPIC_AUTHORIZATION_FAILED"), SecureProducer(
        bootstrap=sspc.bootstrap, sender=pki.keys("MEX-FGR"), trust=pki.trust,
        routing=ROUTING, config_overrides=sspc.config,
    ) as producer:  # fmt: skip
        producer.publish(record)
    # Nor with a raw producer: the broker refuses the write itself.
    errors: list[KafkaError | None] = []
    raw = Producer({"bootstrap.servers": sspc.bootstrap, **sspc.config})
    raw.produce(SEIZURES, value=b"forged", on_delivery=lambda err, _msg: errors.append(err))
    raw.flush(30)
    [error] = errors
    assert error is not None
    assert error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert "TOPIC_AUTHORIZATION_FAILED" in str(broker_error(f"produce to {SEIZURES}", error))


def test_agency_cannot_read_a_topic_not_addressed_to_it(binational: Binational) -> None:  # noqa: F811
    # USA-CBP is addressed by no routing rule; the mirrored seizures are USA-ATF's to read.
    cbp = binational.connect("USA-CBP")
    error = _first_consume_error(cbp.bootstrap, cbp.config, SEIZURES, group="exchange.USA-CBP")
    assert error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    mapped = broker_error(f"consume {SEIZURES}", error)
    assert isinstance(mapped, BrokerError)
    assert "TOPIC_AUTHORIZATION_FAILED" in str(mapped)
    # Listing topics shows it none of the exchange topics either.
    assert not [t for t in probe(cbp.bootstrap, cbp.config) if t.startswith("xchg.")]


def test_agency_cannot_use_another_agencys_consumer_group(binational: Binational) -> None:  # noqa: F811
    # USA-ATF may read the seizures, but not as USA-CBP's consumer group.
    atf = binational.connect("USA-ATF")
    error = _first_consume_error(atf.bootstrap, atf.config, SEIZURES, group="exchange.USA-CBP")
    assert error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED


def test_client_without_a_certificate_cannot_connect(binational: Binational) -> None:  # noqa: F811
    bootstrap = binational.info.plan.ports["MEX"].ssl_bootstrap
    config = {"security.protocol": "SSL", "ssl.ca.location": str(binational.ca("MEX"))}
    with pytest.raises(AuthenticationFailedError, match=r"authentication to .* failed"):
        probe(bootstrap, config, timeout=10)


def test_certificate_from_a_forged_ca_of_the_same_name_is_refused(
    binational: Binational,  # noqa: F811
    tmp_path: Path,
) -> None:
    # An attacker's own "Exchange Transport CA MEX" issues a MEX-FGR certificate.
    forged = new_transport_ca("MEX").issue_client("MEX-FGR")
    (tmp_path / "fgr.pem").write_bytes(forged.chain_pem)
    (tmp_path / "fgr.key").write_bytes(forged.key_pem)
    config = {
        "security.protocol": "SSL",
        "ssl.ca.location": str(binational.ca("MEX")),
        "ssl.certificate.location": str(tmp_path / "fgr.pem"),
        "ssl.key.location": str(tmp_path / "fgr.key"),
    }
    with pytest.raises(AuthenticationFailedError, match=r"authentication to .* failed"):
        probe(binational.info.plan.ports["MEX"].ssl_bootstrap, config, timeout=10)


def test_wrong_scram_password_cannot_connect(binational: Binational) -> None:  # noqa: F811
    conn = binational.connect("USA-ATF", scram=True)
    wrong = f"not-the-password-{uuid.uuid4().hex}"
    with pytest.raises(AuthenticationFailedError) as caught:
        probe(conn.bootstrap, {**conn.config, "sasl.password": wrong}, timeout=10)
    assert "invalid credentials" in str(caught.value).lower() or "authentication" in str(
        caught.value
    )
    assert wrong not in str(caught.value)
    # The right password works: the failure was the password, nothing else.
    assert isinstance(probe(conn.bootstrap, conn.config, timeout=30), list)


def test_domestic_topics_never_cross_the_border(
    binational: Binational,  # noqa: F811
    wait_until: WaitUntil,
) -> None:
    fgr = binational.connect("MEX-FGR")
    domestic = exchange_topic("MEX-FGR", Reach.DOMESTIC, "seizure")
    ensure_topics(fgr.bootstrap, [TopicSpec(domestic)], admin_config=fgr.config)
    # Then a topic that must cross (FGR's audit log). MirrorMaker 2 lists the source's
    # topics at each refresh, so once this later topic has crossed, the domestic one has
    # been listed too, and left behind.
    ensure_topics(fgr.bootstrap, [TopicSpec("audit.MEX-FGR")], admin_config=fgr.config)
    admin_usa = binational.admin("USA")
    wait_until(
        lambda: "audit.MEX-FGR" in _topics(admin_usa),
        timeout=CROSSING_TIMEOUT_S,
        message="audit.MEX-FGR is mirrored to the USA cluster",
    )
    usa_topics = _topics(admin_usa)
    assert domestic not in usa_topics
    # USA agencies' own quarantines live here; Mexican ones never cross.
    assert not [t for t in usa_topics if ".domestic." in t or t.startswith("quarantine.MEX")]


def test_removing_an_agency_revokes_its_acls_and_scram_user(binational: Binational) -> None:  # noqa: F811
    # The runbook's revocation: drop the agency from the deployment, apply. USA-TPD is
    # enrolled for this test alone (no routing rule names it).
    layout = DeployLayout(binational.home)
    plan = binational.info.plan
    tpd = binational.connect("USA-TPD", scram=True)
    assert isinstance(probe(tpd.bootstrap, tpd.config, timeout=30), list)
    assert _acls_of(binational.admin("USA"), "User:USA-TPD")
    remaining = [a for a in plan.agencies if a != "USA-TPD"]
    try:
        narrowed = init_deployment(
            binational.home, agencies=remaining, routing=ROUTING, record_types=plan.record_types
        )
        apply_country(layout, narrowed, "USA")
        assert _acls_of(binational.admin("USA"), "User:USA-TPD") == []
        with pytest.raises(AuthenticationFailedError, match="invalid credentials"):
            probe(tpd.bootstrap, tpd.config, timeout=10)
        # Everyone else keeps working.
        atf = binational.connect("USA-ATF", scram=True)
        assert isinstance(probe(atf.bootstrap, atf.config, timeout=30), list)
        assert _acls_of(binational.admin("USA"), "User:USA-ATF")
    finally:
        restored = init_deployment(
            binational.home, agencies=plan.agencies, routing=ROUTING, record_types=plan.record_types
        )
        apply_country(layout, restored, "USA")


# -- helpers -------------------------------------------------------------------------------


def _acls_of(config: dict[str, Any], principal: str) -> list[Any]:
    anything: Any = None
    every = AclBindingFilter(
        ResourceType.ANY, anything, ResourcePatternType.ANY, principal, anything,
        AclOperation.ANY, AclPermissionType.ANY,
    )  # fmt: skip
    admin = AdminClient(dict(config))  # kept alive until the answer is in
    return list(admin.describe_acls(every, request_timeout=30).result(30))


def _topics(config: dict[str, str]) -> set[str]:
    return set(probe(config["bootstrap.servers"], config, timeout=30))


def _raw_values(config: dict[str, str], topic: str) -> list[bytes]:
    consumer = Consumer(
        {**config, "group.id": f"sniffer-{uuid.uuid4().hex}", "enable.partition.eof": True}
    )
    try:
        described = consumer.list_topics(topic, timeout=30).topics.get(topic)
        if described is None or described.error is not None:
            return []
        partitions = set(described.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        return [msg.value() or b"" for msg in _until_eof(consumer, partitions)]
    finally:
        consumer.close()


def _until_eof(consumer: Consumer, partitions: set[int]) -> Iterator[Any]:
    deadline = time.monotonic() + 60
    while partitions and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        error = msg.error()
        if error is not None:
            assert error.code() == KafkaError._PARTITION_EOF, error.str()
            partitions.discard(msg.partition())
            continue
        yield msg


def _first_consume_error(
    bootstrap: str, config: dict[str, str], topic: str, *, group: str
) -> KafkaError:
    errors: list[KafkaError] = []
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap, **config, "group.id": group,
            "error_cb": errors.append, "log_level": 0,
        }
    )  # fmt: skip
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            error = msg.error() if msg is not None else None
            if error is not None:
                return error
            if errors:
                return errors[0]
        pytest.fail(f"the broker let {group} read {topic} without an error")
    finally:
        consumer.close()


def _sensitive_strings(record: ExchangeRecord) -> list[tuple[str, str]]:
    """(field path, value) of the record's identifying plaintext: serial numbers, names,
    case numbers, narrative. Agency ids are left out: the signed header names them."""
    doc = json.loads(record_type(type(record).record_type_name).to_json(record))
    found: list[tuple[str, str]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for item in node:
                walk(item, path)
        elif isinstance(node, str) and len(node) >= 6:
            leaf = path.rsplit(".", 1)[-1].lower()
            if any(k in leaf for k in ("serial", "name", "narrative", "casenumber", "seizureid")):
                found.append((path, node))

    walk(doc, "")
    return found
