"""The consumer's crash recovery without a broker (ConsumerAudit.recover): deliveries the
sink stored but the log never got, receipts that were never acknowledged, a crash during the
recovery itself, and what it must leave alone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchange.audit import KafkaPosition, ReceiptOutcome
from exchange.audit.agency import AgencyAudit
from exchange.audit.codec import decode_entry
from exchange.audit.entry import EntryKind, Outcome
from exchange.audit.pipeline import MARK_FILE, ConsumerAudit, ConsumerMark, Partition
from exchange.audit.receipt import verify_receipt
from exchange.crypto import SuiteId, VerifiedEnvelope, seal, verify
from exchange.errors import BrokerError
from exchange.policy import HandlingSummary
from tests.unit.audit.audit_world import NOW, AuditWorld

TOPIC = "t.xchg.mex-fgr.seizure"
TP: Partition = (TOPIC, 0)
GROUP = "exchange.USA-ATF"


class _Receipts:
    """A ReceiptTransport double; ``fail`` makes the next flush raise (the kill point)."""

    def __init__(self) -> None:
        self.queued: list[tuple[uuid.UUID, bytes]] = []
        self.acknowledged: list[tuple[uuid.UUID, bytes]] = []
        self.fail = False

    def send(self, sender: str, message_id: uuid.UUID, receipt: bytes) -> None:
        assert sender == "MEX-FGR"
        self.queued.append((message_id, receipt))

    def flush(self) -> None:
        if self.fail:
            self.queued.clear()
            raise BrokerError("sending receipts failed: killed")
        self.acknowledged += self.queued
        self.queued.clear()


class _Bus:
    """The partition the consumer reads, and the sink's view of it."""

    def __init__(self, world: AuditWorld, n: int) -> None:
        handling = HandlingSummary(tlp="AMBER", releasable_to=("MEX", "USA"), originator="MEX-FGR")
        self.envelopes: list[VerifiedEnvelope] = []
        for _ in range(n):
            blob = seal(
                b"record", sender=world.fgr, trust=world.trust, recipients=["USA-ATF"],
                suite=SuiteId.CLASSIC, record_type="seizure", schema_fingerprint=bytes(32),
                handling=handling, topic=TOPIC, now=NOW,
            )  # fmt: skip
            self.envelopes.append(verify(blob, trust=world.trust, now=NOW))
        self.stored: dict[str, KafkaPosition] = {}
        self.rereads: list[tuple[Partition, int, int]] = []

    def store(self, offsets: range) -> None:
        for o in offsets:
            self.stored[str(self.envelopes[o].message_id)] = KafkaPosition(TOPIC, 0, o)

    def next_offsets(self) -> dict[Partition, int]:
        return {TP: max(p.offset for p in self.stored.values()) + 1} if self.stored else {}

    def stored_at(self, message_id: str) -> KafkaPosition | None:
        return self.stored.get(message_id)

    def reread(
        self, tp: Partition, start: int, end: int
    ) -> Iterator[tuple[KafkaPosition, VerifiedEnvelope, str]]:
        self.rereads.append((tp, start, end))
        for o in range(start, min(end, len(self.envelopes))):
            yield KafkaPosition(TOPIC, 0, o), self.envelopes[o], str(uuid.UUID(int=o + 1))


class _Consumer:
    """One consumer process: its log opened, its ConsumerAudit, recovery run at start."""

    def __init__(self, world: AuditWorld, bus: _Bus, receipts: _Receipts) -> None:
        self.bus = bus
        self.audit = AgencyAudit.open(world.home / "atf-log", world.atf, clock=lambda: NOW)
        self.consumer = ConsumerAudit(self.audit, world.atf, receipts, lambda: NOW)

    def recover(self) -> tuple[int, int, int]:
        r = self.consumer.recover(
            GROUP, self.bus.next_offsets(), self.bus.stored_at, self.bus.reread
        )
        return r.entries_recovered, r.receipts_resent, r.partitions_reread

    def settle(self, offsets: range) -> None:
        """A batch: sink commit, delivery entries, receipts, mark."""
        self.bus.store(offsets)
        for o in offsets:
            self.consumer.delivered(
                KafkaPosition(TOPIC, 0, o), self.bus.envelopes[o],
                record_id=str(uuid.UUID(int=o + 1)), duplicate=False,
            )  # fmt: skip
        self.consumer.finish_batch(GROUP, {TP: offsets.stop})

    def kill(self) -> None:
        self.audit.close(checkpoint=False)  # SIGKILL: no final checkpoint; the lock goes

    def deliveries(self) -> list[int]:
        log = self.audit.log
        entries = [decode_entry(log.entry_bytes(i)) for i in range(log.size)]
        return [e.position.offset for e in entries if e.kind is EntryKind.DELIVERY and e.position]


@pytest.fixture
def world(tmp_path: Path) -> AuditWorld:
    return AuditWorld.create(tmp_path)


def _stored_receipts(
    world: AuditWorld, bus: _Bus, notes: list[tuple[uuid.UUID, bytes]]
) -> list[int]:
    """Offsets the ``stored`` receipts in ``notes`` are for; each must verify."""
    by_id = {e.message_id: e for e in bus.envelopes}
    offsets = []
    for message_id, data in notes:
        r = verify_receipt(
            data, trust=world.trust, message_id=message_id,
            signing_digest=by_id[message_id].signing_digest, sender="MEX-FGR",
        )  # fmt: skip
        assert r.outcome is ReceiptOutcome.STORED
        assert r.recipient == "USA-ATF"
        offsets.append(r.position.offset)
    return sorted(offsets)


def test_consumer_sigkilled_between_sink_commit_and_audit_append_logs_the_deliveries_at_restart(
    world: AuditWorld,
) -> None:
    bus, receipts = _Bus(world, 8), _Receipts()
    first = _Consumer(world, bus, receipts)
    assert first.recover() == (0, 0, 0)
    first.settle(range(0, 3))
    bus.store(range(3, 6))  # the sink committed the next batch, then the kill
    first.kill()

    again = _Consumer(world, bus, receipts)
    assert again.recover() == (3, 3, 1)
    # Only the tail past the mark was re-read; each stored record has one delivery entry.
    assert bus.rereads == [(TP, 3, 6)]
    assert again.deliveries() == [0, 1, 2, 3, 4, 5]
    assert _stored_receipts(world, bus, receipts.acknowledged) == [0, 1, 2, 3, 4, 5]
    assert ConsumerMark.read(again.audit.log.directory).positions[GROUP] == {TP: 6}
    # Recovery entries are ordinary delivery entries (outcome ok, the stored position).
    log = again.audit.log
    last = decode_entry(log.entry_bytes(log.size - 1))
    assert (last.outcome, last.position) == (Outcome.OK, KafkaPosition(TOPIC, 0, 5))
    again.settle(range(6, 8))
    again.kill()

    # A clean restart has nothing to repair and reads nothing back.
    third = _Consumer(world, bus, receipts)
    assert third.recover() == (0, 0, 0)
    assert bus.rereads == [(TP, 3, 6)]
    assert third.deliveries() == list(range(8))
    third.kill()


def test_consumer_sigkilled_before_its_receipts_were_acknowledged_resends_them(
    world: AuditWorld,
) -> None:
    bus, receipts = _Bus(world, 5), _Receipts()
    first = _Consumer(world, bus, receipts)
    first.recover()
    first.settle(range(0, 2))
    receipts.fail = True
    with pytest.raises(BrokerError):
        first.settle(range(2, 5))  # logged, receipts lost with the process
    first.kill()
    receipts.fail = False
    assert _stored_receipts(world, bus, receipts.acknowledged) == [0, 1]

    again = _Consumer(world, bus, receipts)
    assert again.recover() == (0, 3, 0)  # nothing to re-read: every delivery is logged
    assert _stored_receipts(world, bus, receipts.acknowledged) == [0, 1, 2, 3, 4]
    assert again.deliveries() == [0, 1, 2, 3, 4]
    again.kill()


def test_consumer_sigkilled_during_its_recovery_logs_no_delivery_twice(
    world: AuditWorld,
) -> None:
    bus, receipts = _Bus(world, 6), _Receipts()
    first = _Consumer(world, bus, receipts)
    first.recover()
    first.settle(range(0, 2))
    bus.store(range(2, 6))
    first.kill()

    receipts.fail = True
    crashed = _Consumer(world, bus, receipts)
    with pytest.raises(BrokerError):
        crashed.recover()  # entries appended, receipts not acknowledged, mark not written
    assert crashed.deliveries() == [0, 1, 2, 3, 4, 5]
    crashed.kill()

    receipts.fail = False
    again = _Consumer(world, bus, receipts)
    assert again.recover() == (0, 4, 0)  # the log's tail covers the re-read range now
    assert again.deliveries() == [0, 1, 2, 3, 4, 5]
    assert _stored_receipts(world, bus, receipts.acknowledged) == [0, 1, 2, 3, 4, 5]
    again.kill()


def test_recovery_leaves_out_what_the_sink_did_not_store_there(world: AuditWorld) -> None:
    """A message re-read at a position the sink did not store it from (a replayed copy,
    quarantined and logged as such) gets no delivery entry; a mark that cannot be read
    makes the recovery cover the whole log (resending), never skip anything."""
    bus, receipts = _Bus(world, 4), _Receipts()
    first = _Consumer(world, bus, receipts)
    first.recover()
    first.settle(range(0, 1))
    bus.store(range(1, 3))
    bus.stored[str(bus.envelopes[2].message_id)] = KafkaPosition(TOPIC, 0, 3)  # stored at 3
    first.kill()
    (world.home / "atf-log" / MARK_FILE).write_text("{not json")

    again = _Consumer(world, bus, receipts)
    recovered, resent, reread = again.recover()
    # No mark: the whole log is the tail; it accounts for offset 0, so reading starts at 1.
    assert bus.rereads == [(TP, 1, 4)]
    # Offset 2 holds a copy of what the sink stored from offset 3, offset 3 something the
    # sink never stored: neither is a delivery.
    assert again.deliveries() == [0, 1]
    assert (recovered, resent, reread) == (1, 2, 1)  # every receipt of the log again
    again.kill()


def test_the_mark_round_trips(tmp_path: Path) -> None:
    mark = ConsumerMark(7, {GROUP: {TP: 12, ("u", 3): 1}})
    mark.write(tmp_path)
    assert ConsumerMark.read(tmp_path) == mark
    mark.advance(GROUP, {TP: 5, ("v", 0): 2})  # never moves back
    assert mark.positions[GROUP] == {TP: 12, ("u", 3): 1, ("v", 0): 2}
    assert ConsumerMark.read(tmp_path / "none") == ConsumerMark()
