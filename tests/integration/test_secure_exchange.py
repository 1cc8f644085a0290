"""The secure exchange on a real broker: both directions, and the attacks on the topics.

Each test publishes through :class:`SecureProducer`, plays the attacker with plain Kafka
clients where needed (raw bytes, no keys), and checks what :class:`SecureConsumer` stored
and quarantined. Every test has its own topic prefix.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from secure_fixtures import (  # noqa: F401  # fixtures are imported explicitly, by name
    Pki,
    consume_until,
    new_prefix,
    pki,
    produce_raw,
    publish,
    raw_messages,
    readdressed,
    topic_prefix,
)

from exchange.errors import IntegrityReason
from exchange.producers.secure import exchange_topic_spec
from exchange.quarantine import read_quarantine
from exchange.records import RECORD_TYPE_NAMES, ExchangeRecord, record_type
from exchange.records.sample import generate_corpus
from exchange.routing import Reach, exchange_topic
from exchange.sinks import DeliveredRecord, open_sink
from exchange.topics import ensure_topics

#: direction -> (sender, recipient); a second agency of each country stays unaddressed.
DIRECTIONS = {"MEX->USA": ("MEX-FGR", "USA-ATF"), "USA->MEX": ("USA-CBP", "MEX-SSPC")}
PER_FAMILY = 3


@dataclass(frozen=True)
class Crossing:
    """What the both-directions run sent and what each recipient stored."""

    prefix: str
    sent: dict[tuple[str, str], list[ExchangeRecord]]  # (direction, family) -> records
    stored: dict[str, dict[str, DeliveredRecord]]  # recipient -> record id -> stored
    total: int


@pytest.fixture(scope="module")
def crossing(
    pki: Pki,  # noqa: F811  # the imported fixture, by name
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Crossing:
    """Every family published in both directions once; each recipient consumes once."""
    prefix = new_prefix()
    corpus = generate_corpus(11, cases=PER_FAMILY)
    sent: dict[tuple[str, str], list[ExchangeRecord]] = {}
    for direction, (sender, recipient) in DIRECTIONS.items():
        batch = []
        for family in RECORD_TYPE_NAMES:
            records = [readdressed(r, sender, recipient) for r in corpus.of_type(family)]
            sent[direction, family] = records[:PER_FAMILY]
            batch += records[:PER_FAMILY]
        summary = publish(pki, kafka_bootstrap, prefix, sender, batch)
        assert summary.delivered == len(batch)
    total = sum(len(v) for v in sent.values())
    stored = {}
    for _, recipient in DIRECTIONS.values():
        path = tmp_path_factory.mktemp("crossing") / f"{recipient}.db"
        with open_sink(f"sqlite:{path}") as sink:
            consume_until(pki, kafka_bootstrap, prefix, recipient, sink, messages=total)
            stored[recipient] = {r.record_id: r for r in sink.records()}
    return Crossing(prefix, sent, stored, total)


@pytest.mark.parametrize("direction", list(DIRECTIONS))
@pytest.mark.parametrize("family", RECORD_TYPE_NAMES)
def test_every_family_crosses_the_border_intact(
    crossing: Crossing, direction: str, family: str
) -> None:
    sender, recipient = DIRECTIONS[direction]
    rtype = record_type(family)
    stored = crossing.stored[recipient]
    for record in crossing.sent[direction, family]:
        item = stored.get(record.meta.record_id)
        assert item is not None, f"{family} {record.meta.record_id} never reached {recipient}"
        assert item.record_json == rtype.to_json(record)
        assert item.sender == sender
        assert item.record_type == family
        assert item.topic == exchange_topic(
            sender, Reach.CROSS_BORDER, family, prefix=crossing.prefix
        )
    # Each recipient stores its own direction's records and nothing else.
    assert len(stored) == crossing.total // 2


def test_non_recipient_gets_nothing_readable(
    crossing: Crossing,
    pki: Pki,  # noqa: F811
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    # Enrolled, subscribed to every topic of the exchange, addressed by nothing.
    with open_sink(f"sqlite:{tmp_path / 'hsi.db'}") as sink:
        summary = consume_until(
            pki, kafka_bootstrap, crossing.prefix, "USA-HSI", sink, messages=crossing.total
        )
        assert sink.count() == 0
    assert summary.delivered == 0
    assert summary.not_addressed == crossing.total
    # Nothing was decrypted, so nothing could fail and be quarantined either.
    assert summary.quarantined_total == 0
    assert list(read_quarantine(kafka_bootstrap, "USA-HSI", topic_prefix=crossing.prefix)) == []


def _seizures(sender: str, recipient: str, count: int, seed: int) -> list[ExchangeRecord]:
    return [readdressed(r, sender, recipient) for r in generate_corpus(seed, cases=count).seizures]


def test_tampered_envelope_is_quarantined_while_valid_traffic_continues(
    pki: Pki,  # noqa: F811
    kafka_bootstrap: str,
    topic_prefix: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    before, after = _seizures("MEX-FGR", "USA-ATF", 10, 1), _seizures("MEX-FGR", "USA-ATF", 10, 2)
    publish(pki, kafka_bootstrap, topic_prefix, "MEX-FGR", before)
    topic = exchange_topic("MEX-FGR", Reach.CROSS_BORDER, "seizure", prefix=topic_prefix)
    original = raw_messages(kafka_bootstrap, topic)[0]
    tampered = bytearray(original.value)
    tampered[len(tampered) // 2] ^= 0x01
    offset = produce_raw(kafka_bootstrap, original, value=bytes(tampered))
    publish(pki, kafka_bootstrap, topic_prefix, "MEX-FGR", after)

    with open_sink(f"sqlite:{tmp_path / 'atf.db'}") as sink:
        summary = consume_until(pki, kafka_bootstrap, topic_prefix, "USA-ATF", sink, messages=21)
        stored_ids = {r.record_id for r in sink.records()}
    assert stored_ids == {r.meta.record_id for r in before + after}
    assert summary.delivered == 20
    assert summary.quarantined_total == 1
    [entry] = read_quarantine(kafka_bootstrap, "USA-ATF", topic_prefix=topic_prefix)
    assert entry.value == bytes(tampered)  # the evidence, byte for byte
    assert (entry.source_topic, entry.source_partition, entry.source_offset) == (
        topic,
        original.partition,
        offset,
    )
    assert entry.reason in set(IntegrityReason)
    assert summary.quarantined == Counter({entry.reason: 1})


def test_replayed_envelope_is_quarantined(
    pki: Pki,  # noqa: F811
    kafka_bootstrap: str,
    topic_prefix: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    records = _seizures("MEX-FGR", "USA-ATF", 5, 3)
    publish(pki, kafka_bootstrap, topic_prefix, "MEX-FGR", records)
    topic = exchange_topic("MEX-FGR", Reach.CROSS_BORDER, "seizure", prefix=topic_prefix)
    url = f"sqlite:{tmp_path / 'atf.db'}"
    with open_sink(url) as sink:
        first = consume_until(pki, kafka_bootstrap, topic_prefix, "USA-ATF", sink, messages=5)
    assert first.delivered == 5

    original = raw_messages(kafka_bootstrap, topic)[0]
    offset = produce_raw(kafka_bootstrap, original, value=original.value)  # same bytes, again
    with open_sink(url) as sink:
        again = consume_until(pki, kafka_bootstrap, topic_prefix, "USA-ATF", sink, messages=1)
        stored = list(sink.records())
    assert again.delivered == 0
    assert again.quarantined == Counter({IntegrityReason.REPLAY.value: 1})
    assert len(stored) == 5
    [replayed] = [
        r for r in stored if (r.partition, r.offset) == (original.partition, original.offset)
    ]
    assert sum(r.message_id == replayed.message_id for r in stored) == 1
    [entry] = read_quarantine(kafka_bootstrap, "USA-ATF", topic_prefix=topic_prefix)
    assert entry.reason == IntegrityReason.REPLAY.value
    assert entry.source_offset == offset
    assert entry.value == original.value
    # Where the accepted copy was read from: the refusal names it.
    assert f"{topic}[{original.partition}]@{original.offset}" in (entry.detail or "")


def test_envelope_moved_to_another_agencys_topic_is_quarantined(
    pki: Pki,  # noqa: F811
    kafka_bootstrap: str,
    topic_prefix: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    records = _seizures("MEX-FGR", "USA-ATF", 5, 4)
    publish(pki, kafka_bootstrap, topic_prefix, "MEX-FGR", records)
    topic = exchange_topic("MEX-FGR", Reach.CROSS_BORDER, "seizure", prefix=topic_prefix)
    elsewhere = exchange_topic("MEX-SSPC", Reach.CROSS_BORDER, "seizure", prefix=topic_prefix)
    ensure_topics(kafka_bootstrap, [exchange_topic_spec(elsewhere, partitions=1)])
    original = raw_messages(kafka_bootstrap, topic)[0]
    produce_raw(kafka_bootstrap, original, value=original.value, topic=elsewhere)

    with open_sink(f"sqlite:{tmp_path / 'atf.db'}") as sink:
        summary = consume_until(pki, kafka_bootstrap, topic_prefix, "USA-ATF", sink, messages=6)
        assert sink.count() == 5
    assert summary.delivered == 5
    assert summary.quarantined == Counter({IntegrityReason.BINDING_MISMATCH.value: 1})
    [entry] = read_quarantine(kafka_bootstrap, "USA-ATF", topic_prefix=topic_prefix)
    assert entry.source_topic == elsewhere
    assert entry.verified_sender == "MEX-FGR"  # authentic, but not where it was sealed for
    assert entry.value == original.value
