"""Avro records of every family through a real broker, and the secure demo end to end."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from exchange.cli import cli
from exchange.consumers.unsealed import UnsealedAvroConsumer
from exchange.producers.unsealed import UnsealedAvroProducer
from exchange.records import RECORD_TYPE_NAMES, record_type
from exchange.records.sample import generate_corpus
from exchange.sinks import open_sink


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


def test_demo_exchanges_every_family_both_ways_and_delivers_everything(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EXCHANGE_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("EXCHANGE_HOME", str(tmp_path))
    monkeypatch.setenv("EXCHANGE_TOPIC_PREFIX", f"demo-{uuid.uuid4().hex[:8]}.")
    result = CliRunner().invoke(cli, ["demo", "--cases", "3", "--seed", "5"])
    assert result.exit_code == 0, result.output
    match = re.search(r"(\d+)/(\d+) deliveries verified", result.output)
    assert match is not None, result.output
    assert match.group(1) == match.group(2)
    assert int(match.group(1)) > 0
    for direction in ("MEX->USA", "USA->MEX"):
        assert direction in result.output
    for family in RECORD_TYPE_NAMES:
        assert family in result.output
    # Every agency's sink holds exactly what was addressed to it, once.
    sinks = sorted((tmp_path / "sinks").glob("*.db"))
    assert sinks
    total = 0
    for path in sinks:
        with open_sink(f"sqlite:{path}") as sink:
            records = list(sink.records())
        assert len({r.message_id for r in records}) == len(records)
        total += len(records)
    assert total == int(match.group(1))
