"""What the outbox does with a delivery report: which failures stay spooled, and the audit
facts of an envelope read back from disk."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from exchange.crypto import BatchSealer, SuiteId
from exchange.errors import OutboxCorruptError
from exchange.producers._delivery import may_get_through
from exchange.producers._outbox_codec import OutboxEntry
from exchange.producers._outbox_sender import StoredFacts
from tests.unit.crypto.envelope_world import NOW, World, message


@pytest.mark.parametrize(
    "code",
    [
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._PURGE_INFLIGHT,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.REQUEST_TIMED_OUT,
    ],
)
def test_failures_an_absent_cluster_explains_stay_spooled(code: int) -> None:
    assert may_get_through(KafkaError(code))


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    ],
)
def test_failures_a_retry_cannot_fix_are_final(code: int) -> None:
    assert not may_get_through(KafkaError(code))


@pytest.mark.parametrize("suite", list(SuiteId))
def test_facts_read_back_from_disk_equal_the_sealers(suite: SuiteId) -> None:
    world = World()
    with BatchSealer(world.mex, world.trust, suite=suite, max_batch=2, clock=lambda: NOW) as b:
        pending = b.add(b"record", **message())
    stored = StoredFacts.of(OutboxEntry(0, "t", b"k", "seizure", pending.result()))
    assert stored.header == pending.header
    assert stored.signing_digest == pending.signing_digest
    assert stored.header_digest == pending.header_digest


def test_bytes_that_are_not_an_envelope_are_a_corrupt_outbox() -> None:
    with pytest.raises(OutboxCorruptError):
        StoredFacts.of(OutboxEntry(0, "t", b"k", "seizure", b"not an envelope"))
