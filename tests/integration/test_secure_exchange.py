"""The secure exchange on a real broker: both directions, and the attacks on the topics.

Each test publishes through :class:`SecureProducer`, plays the attacker with plain Kafka
clients where needed (raw bytes, no keys), and checks what :class:`SecureConsumer` stored
and quarantined. Every test has its own topic prefix.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from exchange.cli import main
from exchange.errors import IntegrityReason
from exchange.producers.secure import exchange_topic_spec
from exchange.quarantine import read_quarantine
from exchange.records import RECORD_TYPE_NAMES, ExchangeRecord, record_type
from exchange.records.sample import generate_corpus
from exchange.routing import Reach, exchange_topic
from exchange.sinks import DeliveredRecord, open_sink
from exchange.topics import ensure_topics
from tests.integration.secure_fixtures import (  # noqa: F401  # fixtures are imported explicitly, by name
    AGENCIES,
    Pki,
    cli_env,
    consume_until,
    new_prefix,
    pki,
    produce_raw,
    publish,
    raw_messages,
    readdressed,
    topic_prefix,
    topics_under,
)

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
    assert (entry.verified_sender, entry.message_id) == ("MEX-FGR", replayed.message_id)
    # Where the accepted copy was read from: the refusal names it.
    assert f"{topic}[{original.partition}]@{original.offset}" in (entry.detail or "")


def test_replay_read_in_the_same_batch_as_its_original_is_quarantined_and_the_original_kept(
    pki: Pki,  # noqa: F811
    kafka_bootstrap: str,
    topic_prefix: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    records = _seizures("MEX-FGR", "USA-ATF", 1, 4)
    publish(pki, kafka_bootstrap, topic_prefix, "MEX-FGR", records)
    topic = exchange_topic("MEX-FGR", Reach.CROSS_BORDER, "seizure", prefix=topic_prefix)
    [original] = raw_messages(kafka_bootstrap, topic)
    # Injected into the same partition before anyone consumed: one poll reads both copies.
    offset = produce_raw(kafka_bootstrap, original, value=original.value)
    with open_sink(f"sqlite:{tmp_path / 'atf.db'}") as sink:
        summary = consume_until(pki, kafka_bootstrap, topic_prefix, "USA-ATF", sink, messages=2)
        stored = list(sink.records())
    assert summary.delivered == 1
    assert summary.quarantined == Counter({IntegrityReason.REPLAY.value: 1})
    assert [(r.partition, r.offset) for r in stored] == [(original.partition, original.offset)]
    [entry] = read_quarantine(kafka_bootstrap, "USA-ATF", topic_prefix=topic_prefix)
    assert entry.source_offset == offset


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


# -- the operator CLI on the real broker ------------------------------------------------


@pytest.fixture
def cli_on_broker(
    pki: Pki,  # noqa: F811
    kafka_bootstrap: str,
    topic_prefix: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """``EXCHANGE_*`` set for in-process ``main()`` calls; returns a scratch directory.

    The routing table sends every type from every agency to every enrolled agency, so each
    record's handling (and ``--to``) decides.
    """
    routing = tmp_path / "routing.toml"
    names = ", ".join(f'"{a}"' for a in AGENCIES)
    routing.write_text(f'[[rules]]\nsenders = ["*"]\nrecipients = [{names}]\n')
    env = cli_env(pki, kafka_bootstrap, topic_prefix, EXCHANGE_ROUTING_FILE=str(routing))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def _jsonl(path: Path, records: list[ExchangeRecord]) -> Path:
    path.write_text(
        "".join(record_type(type(r).record_type_name).to_json(r) + "\n" for r in records)
    )
    return path


def _bad_lines(good: list[str], case: str) -> tuple[list[str], str]:
    """The file's lines and the ``--type`` of one bad-input case; line 3 is the bad one."""
    if case == "malformed JSON":
        return [*good[:2], '{"meta": {"recordId": '], "seizure"
    if case == "missing keys":
        broken = json.loads(good[2])
        del broken["handling"]
        return [*good[:2], json.dumps(broken)], "seizure"
    if case == "unknown type":
        return good, "firearm"
    # "recipient not allowed": a valid record that only USA-CBP may receive, sent --to USA-ATF.
    [cbp_only] = _seizures("MEX-FGR", "USA-CBP", 1, 8)
    return [*good[:2], record_type("seizure").to_json(cbp_only)], "seizure"


@pytest.mark.parametrize(
    ("case", "code", "says"),
    [
        ("malformed JSON", 4, "recs.jsonl:3: seizure: record: Invalid JSON"),
        ("missing keys", 4, "recs.jsonl:3: seizure: handling: Field required"),
        ("unknown type", 2, "'firearm' is not one of 'seizure', 'trace-request'"),
        ("recipient not allowed", 4, "recs.jsonl:3: cannot address USA-ATF"),
    ],
)
def test_cli_bad_input_is_one_error_line_and_publishes_nothing(
    *,
    cli_on_broker: Path,
    kafka_admin: AdminClient,
    topic_prefix: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    case: str,
    code: int,
    says: str,
) -> None:
    good = [record_type("seizure").to_json(r) for r in _seizures("MEX-FGR", "USA-ATF", 3, 5)]
    lines, type_name = _bad_lines(good, case)
    path = cli_on_broker / "recs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    args = ["publish", "--as", "MEX-FGR", "--type", type_name, "--file", str(path)]
    assert main([*args, "--to", "USA-ATF"]) == code
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("error: ")
    assert says in line
    assert topics_under(kafka_admin, topic_prefix) == []  # nothing was ever produced


def test_cli_publish_consume_and_inspect_quarantine(
    *,
    cli_on_broker: Path,
    kafka_bootstrap: str,
    topic_prefix: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = _seizures("MEX-FGR", "USA-ATF", 4, 6)
    path = _jsonl(cli_on_broker / "recs.jsonl", records)
    publish_args = ["publish", "--as", "MEX-FGR", "--type", "seizure", "--file", str(path)]
    assert main([*publish_args, "--to", "USA-ATF"]) == 0
    assert capsys.readouterr().out.startswith(
        "published 4 seizure record(s) as MEX-FGR: delivered 4,"
    )
    topic = exchange_topic("MEX-FGR", Reach.CROSS_BORDER, "seizure", prefix=topic_prefix)
    original = raw_messages(kafka_bootstrap, topic)[0]
    forged = original.value[:-1] + bytes([original.value[-1] ^ 0xFF])
    produce_raw(kafka_bootstrap, original, value=forged)

    sink = f"sqlite:{cli_on_broker / 'atf.db'}"
    assert main(["consume", "--as", "USA-ATF", "--sink", sink, "--until-idle", "5"]) == 0
    summary = capsys.readouterr().out.strip()
    assert summary.startswith("USA-ATF: delivered 4, duplicates 0, not addressed 0, quarantined 1")

    assert main(["quarantine", "list", "--as", "USA-ATF", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["source"].startswith(f"{topic}[{original.partition}]@")
    assert main(["quarantine", "show", "--as", "USA-ATF", listed["quarantineId"]]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["preview"]["hex"] == forged[:64].hex()
    assert shown["valueSize"] == len(forged)
    assert main(["quarantine", "show", "--as", "USA-ATF", "no-such-id"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_cli_policy_refusal_mid_file_reports_what_was_delivered(
    *,
    cli_on_broker: Path,
    kafka_bootstrap: str,
    topic_prefix: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = _seizures("MEX-FGR", "USA-ATF", 4, 9)
    expired = json.loads(record_type("seizure").to_json(records[2]))
    expired["handling"]["retention"].update(retainUntil="2001-01-01", reviewAfter="2000-06-01")
    path = _jsonl(cli_on_broker / "recs.jsonl", records[:2])
    with path.open("a") as f:
        f.write(json.dumps(expired) + "\n" + record_type("seizure").to_json(records[3]) + "\n")

    args = ["publish", "--as", "MEX-FGR", "--type", "seizure", "--file", str(path)]
    assert main([*args, "--to", "USA-ATF"]) == 4
    out, err = capsys.readouterr()
    assert out.startswith("published 2 seizure record(s) as MEX-FGR: delivered 2,")
    [line] = err.splitlines()
    assert line.startswith("error: ")
    assert "recs.jsonl:3: " in line
    assert "retention ended 2001-01-01" in line
    assert "2 earlier record(s) delivered, nothing after it published" in line
    topic = exchange_topic("MEX-FGR", Reach.CROSS_BORDER, "seizure", prefix=topic_prefix)
    assert len(raw_messages(kafka_bootstrap, topic)) == 2  # line 4 never left
