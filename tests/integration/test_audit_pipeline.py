"""The pipeline fails closed on the real broker: a producer or consumer whose audit log
cannot be written stops with the storage error instead of carrying on unlogged."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange.audit import AuditLog, AuditStorageError
from exchange.audit.agency import AgencyAudit
from exchange.consumers.secure import SecureConsumer
from exchange.producers.secure import SecureProducer
from exchange.records.sample import generate_corpus
from exchange.routing import RoutingRule, RoutingTable
from exchange.sinks import open_sink
from tests.integration.secure_fixtures import (  # noqa: F401  # fixtures are imported by name
    AGENCIES,
    Pki,
    pki,
    publish,
    readdressed,
    topic_prefix,
)


def _broken(*_args: object) -> range:
    raise AuditStorageError("cannot fsync: no space left on device")


def test_producer_stops_when_its_audit_log_cannot_be_written(
    pki: Pki,  # noqa: F811  # the imported fixture, by name
    kafka_bootstrap: str,
    topic_prefix: str,  # noqa: F811  # the imported fixture, by name
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = readdressed(generate_corpus(41, cases=1).records()[0], "MEX-FGR", "USA-ATF")
    routing = RoutingTable(rules=[RoutingRule(senders=["*"], recipients=list(AGENCIES))])
    monkeypatch.setattr(AuditLog, "append_many", _broken)
    audit = AgencyAudit.open(tmp_path / "MEX-FGR", pki.keys("MEX-FGR"))
    producer = SecureProducer(
        bootstrap=kafka_bootstrap, sender=pki.keys("MEX-FGR"), trust=pki.trust,
        routing=routing, topic_prefix=topic_prefix, audit=audit,
    )  # fmt: skip
    producer.publish(record)
    with pytest.raises(AuditStorageError, match="cannot fsync"):
        producer.flush()
    # The envelope was delivered, but the producer refused to go on without its entry.
    assert producer.summary.delivered == 1
    assert audit.log.size == 0
    audit.close(checkpoint=False)


def test_consumer_stops_when_its_audit_log_cannot_be_written(
    pki: Pki,  # noqa: F811  # the imported fixture, by name
    kafka_bootstrap: str,
    topic_prefix: str,  # noqa: F811  # the imported fixture, by name
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = readdressed(generate_corpus(43, cases=1).records()[0], "MEX-FGR", "USA-ATF")
    assert publish(pki, kafka_bootstrap, topic_prefix, "MEX-FGR", [record]).delivered == 1
    monkeypatch.setattr(AuditLog, "append_many", _broken)
    audit = AgencyAudit.open(tmp_path / "USA-ATF", pki.keys("USA-ATF"))
    with open_sink(f"sqlite:{tmp_path / 'atf.db'}") as sink, SecureConsumer(
        bootstrap=kafka_bootstrap, recipient=pki.keys("USA-ATF"), trust=pki.trust, sink=sink,
        group_id=f"{topic_prefix}atf", topic_prefix=topic_prefix, audit=audit,
    ) as consumer:  # fmt: skip
        with pytest.raises(AuditStorageError, match="cannot fsync"):
            consumer.run(until_idle=30.0, poll_timeout=0.2)
        assert consumer.summary.delivered == 1  # stored, then stopped: no receipt, no commit
    assert audit.log.size == 0
    audit.close(checkpoint=False)
