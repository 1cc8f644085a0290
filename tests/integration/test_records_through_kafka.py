"""Avro records of every family through a real broker, and the demo end to end."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from click.testing import CliRunner

from exchange.cli import cli
from exchange.consumers.unsealed import UnsealedAvroConsumer
from exchange.producers.unsealed import UnsealedAvroProducer
from exchange.records import RECORD_TYPE_NAMES, record_type
from exchange.records.sample import generate_corpus


@pytest.mark.parametrize("family", RECORD_TYPE_NAMES)
def test_every_family_round_trips_through_kafka(
    family: str, kafka_bootstrap: str, create_topic: Callable[..., str]
) -> None:
    topic = create_topic(partitions=2)
    rtype = record_type(family)
    records = generate_corpus(seed=11, cases=3).of_type(family)
    with UnsealedAvroProducer(bootstrap=kafka_bootstrap, client_id="it-producer") as producer:
        for record in records:
            producer.publish(rtype, record, topic=topic, key=record.meta.record_id.encode())
        assert producer.flush() == len(records)

    received = {}
    with UnsealedAvroConsumer(
        bootstrap=kafka_bootstrap,
        group_id=f"it-{uuid.uuid4().hex}",
        client_id="it-consumer",
        topics=[topic],
    ) as consumer:
        for item in consumer.records(idle_timeout=20.0, limit=len(records)):
            assert item.record_type.name == family
            received[item.record.meta.record_id] = item.record
            consumer.commit(item)

    assert received == {r.meta.record_id: r for r in records}


def test_demo_runs_records_of_every_family_through_the_broker(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXCHANGE_BOOTSTRAP", kafka_bootstrap)
    result = CliRunner().invoke(cli, ["demo", "--cases", "2", "--seed", "5"])
    assert result.exit_code == 0, result.output
    for family in RECORD_TYPE_NAMES:
        assert family in result.output
    corpus_size = len(generate_corpus(seed=5, cases=2).records())
    assert f"{corpus_size}/{corpus_size} records back" in result.output
    assert f"{corpus_size} identical" in result.output
