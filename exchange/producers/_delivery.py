"""Which failed delivery reports an envelope may outlive: the outbox keeps it for later.

A failure the cluster's absence explains (timeouts, transport errors, no leader, too few
in-sync replicas) leaves the envelope in the outbox to be sent again. Anything else (the
principal may not write the topic, the message is too large, the broker rejects the record)
would fail the same way on every retry: it is a failure, reported and audited as one, so
the outbox never holds an envelope forever.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

from exchange.errors import BrokerError

__all__ = ["cluster_absent", "may_get_through"]

# librdkafka reports an envelope it gave up on after ``delivery.timeout.ms`` as
# _MSG_TIMED_OUT and says it is not retriable (for librdkafka itself it is final); for the
# outbox it is the very case to wait out. Purged messages are ours (on close).
_CLUSTER_ABSENT = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TIMED_OUT_QUEUE,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._PURGE_QUEUE,
        KafkaError._PURGE_INFLIGHT,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._NODE_UPDATE,
        # A topic the producer could not create while the cluster was away: it creates it
        # once the cluster answers (SecureProducer._retry_topics).
        KafkaError._UNKNOWN_TOPIC,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.KAFKA_STORAGE_ERROR,
    }
)


def may_get_through(err: KafkaError) -> bool:
    """Whether sending the same envelope again later may succeed (keep it spooled)."""
    return err.code() in _CLUSTER_ABSENT or bool(err.retriable())


def cluster_absent(exc: BrokerError) -> bool:
    """Whether a failed admin call (creating a topic) is explained by an absent cluster."""
    cause = exc.__cause__
    if isinstance(cause, KafkaException) and cause.args and isinstance(cause.args[0], KafkaError):
        return may_get_through(cause.args[0])
    return exc.retriable
