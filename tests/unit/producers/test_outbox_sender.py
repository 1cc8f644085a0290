"""The outbox sender's order and bounds, with the delivery reports scripted by the test.

librdkafka is replaced by a recorder that holds what was produced until the test reports on
it (success or a chosen error), so each test decides exactly which envelope is acknowledged
when. The envelopes are real sealed envelopes and the outbox is a real directory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
from confluent_kafka import KafkaError, Message

from exchange.audit.builders import EnvelopeFacts
from exchange.crypto import BatchSealer, PendingEnvelope, SuiteId
from exchange.metrics import ExchangeMetrics
from exchange.producers._outbox_codec import OutboxEntry
from exchange.producers._outbox_sender import OutboxSender
from exchange.producers.outbox import Outbox, Spool
from tests.unit.crypto.envelope_world import NOW, World, message

_Report = Callable[[KafkaError | None, Message], None]


@dataclass
class _Produced:
    value: bytes
    on_delivery: _Report


class _Recorder:
    """Holds produced envelopes until the test reports on them, oldest first."""

    def __init__(self) -> None:
        self.in_flight: list[_Produced] = []
        self.history: list[bytes] = []

    def produce(
        self,
        topic: str,
        *,
        value: bytes,
        key: bytes,
        headers: list[tuple[str, str | bytes | None]],
        on_delivery: _Report,
    ) -> None:
        del topic, key, headers  # what a broker routes by; these tests follow the bytes
        self.in_flight.append(_Produced(value, on_delivery))
        self.history.append(value)

    def poll(self, timeout: float) -> int:
        del timeout  # reports come only when the test calls report()
        return 0

    def purge(self, in_queue: bool, in_flight: bool) -> None:
        del in_queue, in_flight  # both, as the sender asks
        purged, self.in_flight = self.in_flight, []
        for p in purged:
            p.on_delivery(KafkaError(KafkaError._PURGE_QUEUE), cast(Message, None))

    def report(self, value: bytes, err: int | None = None) -> None:
        (done,) = [p for p in self.in_flight if p.value == value]
        self.in_flight.remove(done)
        done.on_delivery(None if err is None else KafkaError(err), cast(Message, None))


class _Handler:
    def __init__(self) -> None:
        self.delivered: list[tuple[int, EnvelopeFacts]] = []
        self.failed: list[int] = []

    def delivered_(self, entry: OutboxEntry, facts: EnvelopeFacts, msg: Message) -> None:
        del msg  # the recorder has no broker positions
        self.delivered.append((entry.seq, facts))

    def failed_(self, entry: OutboxEntry, facts: EnvelopeFacts, err: KafkaError) -> None:
        del facts, err
        self.failed.append(entry.seq)


@dataclass(frozen=True)
class _Routes:
    delivered: Callable[[OutboxEntry, EnvelopeFacts, Message], None]
    failed: Callable[[OutboxEntry, EnvelopeFacts, KafkaError], None]


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def sealed() -> list[tuple[Spool, PendingEnvelope]]:
    world = World()
    with BatchSealer(world.mex, world.trust, suite=SuiteId.CLASSIC, clock=lambda: NOW) as b:
        pending = [b.add(b"record %d" % i, **message()) for i in range(40)]
    return [
        (("mex.usa.seizure.v1", b"key-%d" % i, "seizure", p.result()), p)
        for i, p in enumerate(pending)
    ]


@dataclass
class _Rig:
    outbox: Outbox
    kafka: _Recorder
    handler: _Handler
    clock: _Clock
    sender: OutboxSender
    values: dict[bytes, int]

    def in_flight(self) -> list[int]:
        return [self.values[p.value] for p in self.kafka.in_flight]

    def sent(self) -> list[int]:
        return [self.values[v] for v in self.kafka.history]


def _rig(directory: Path, sealed: list[tuple[Spool, PendingEnvelope]], *, window: int) -> _Rig:
    outbox = Outbox(directory)
    kafka, handler, clock = _Recorder(), _Handler(), _Clock()
    sender = OutboxSender(
        kafka, outbox, agency="MEX-FGR", metrics=ExchangeMetrics(), window=window, clock=clock,
        handler=_Routes(handler.delivered_, handler.failed_),
    )  # fmt: skip
    values = {spool[3]: i for i, (spool, _) in enumerate(sealed)}
    return _Rig(outbox, kafka, handler, clock, sender, values)


def _spooling(rig: _Rig) -> bool:
    # A call, so the type checker does not carry one assert's narrowing into the next.
    return rig.sender.spooling


def _spool(rig: _Rig, items: list[tuple[Spool, PendingEnvelope]]) -> None:
    rig.sender.spool([(spool, cast(EnvelopeFacts, p)) for spool, p in items])


def test_no_more_than_the_window_is_in_flight_and_the_rest_waits_on_disk(
    tmp_path: Path, sealed: list[tuple[Spool, PendingEnvelope]]
) -> None:
    rig = _rig(tmp_path, sealed, window=8)
    for start in range(0, 30, 10):
        _spool(rig, sealed[start : start + 10])
    assert rig.in_flight() == list(range(8))
    for seq in (0, 1, 2):
        rig.kafka.report(sealed[seq][0][3])
    rig.sender.pump()
    assert rig.in_flight() == list(range(3, 11))
    while rig.kafka.in_flight:
        assert len(rig.kafka.in_flight) <= 8
        assert max(rig.in_flight()) < rig.outbox.settled_below + 8
        rig.kafka.report(rig.kafka.in_flight[0].value)
        rig.sender.pump()
    assert rig.sent() == list(range(30))
    assert [seq for seq, _ in rig.handler.delivered] == list(range(30))
    assert rig.outbox.pending == 0


def test_a_timeout_stops_new_sends_and_the_oldest_unsettled_envelope_probes_first(
    tmp_path: Path, sealed: list[tuple[Spool, PendingEnvelope]]
) -> None:
    rig = _rig(tmp_path, sealed, window=8)
    _spool(rig, sealed[:20])
    value = {seq: sealed[seq][0][3] for seq in range(40)}
    rig.kafka.report(value[0])
    rig.kafka.report(value[1], KafkaError._MSG_TIMED_OUT)
    assert _spooling(rig)
    _spool(rig, sealed[20:25])  # spooling: to disk only
    assert rig.in_flight() == list(range(2, 8))
    for seq in (2, 3):
        rig.kafka.report(value[seq])  # late successes of what was already in flight
    assert _spooling(rig)  # ...do not end spooling: only the probe does
    for seq in range(4, 8):
        rig.kafka.report(value[seq], KafkaError._MSG_TIMED_OUT)
    rig.sender.pump()
    assert rig.in_flight() == []  # not before the backoff
    rig.clock.now += 0.5
    rig.sender.pump()
    assert rig.in_flight() == [1]  # the probe: the oldest unsettled envelope, alone
    rig.kafka.report(value[1], KafkaError._MSG_TIMED_OUT)
    rig.clock.now += 0.5
    rig.sender.pump()
    assert rig.in_flight() == []  # the failed probe doubled the backoff
    rig.clock.now += 0.5
    rig.sender.pump()
    assert rig.in_flight() == [1]
    rig.kafka.report(value[1])
    assert not _spooling(rig)
    rig.sender.pump()
    # The drain resumes in order from the oldest unsettled entry, skipping 2 and 3.
    assert rig.in_flight() == list(range(4, 12))
    while rig.kafka.in_flight:
        rig.kafka.report(rig.kafka.in_flight[0].value)
        rig.sender.pump()
    assert sorted(seq for seq, _ in rig.handler.delivered) == list(range(25))
    assert rig.sent()[8:] == [1, 1, *range(4, 25)]
    # Spooled when the cluster came back: the probe (1) and 4..24.
    assert rig.sender.drained == 1 + 21


def test_a_failure_no_retry_can_fix_settles_the_envelope_as_failed(
    tmp_path: Path, sealed: list[tuple[Spool, PendingEnvelope]]
) -> None:
    rig = _rig(tmp_path, sealed, window=8)
    _spool(rig, sealed[:2])
    rig.kafka.report(sealed[0][0][3], KafkaError.TOPIC_AUTHORIZATION_FAILED)
    assert rig.handler.failed == [0]
    assert not _spooling(rig)
    assert rig.outbox.is_settled(0)
    assert rig.outbox.pending == 1


def test_a_new_sender_sends_the_earlier_runs_envelopes_first_with_facts_from_disk(
    tmp_path: Path, sealed: list[tuple[Spool, PendingEnvelope]]
) -> None:
    first = _rig(tmp_path, sealed, window=8)
    _spool(first, sealed[:5])
    first.kafka.report(sealed[0][0][3])
    first.sender.close()  # purges what librdkafka held: it stays in the outbox
    first.outbox.close()
    second = _rig(tmp_path, sealed, window=8)
    second.sender.pump()
    assert second.in_flight() == [1, 2, 3, 4]
    assert second.kafka.history == [s[0][3] for s in sealed[1:5]]  # the same bytes
    for seq in (1, 2, 3, 4):
        second.kafka.report(sealed[seq][0][3])
    for seq, facts in second.handler.delivered:
        pending = sealed[seq][1]
        assert facts.signing_digest == pending.signing_digest
        assert facts.header_digest == pending.header_digest
        assert facts.header == pending.header
    assert second.outbox.pending == 0
    second.outbox.close()
