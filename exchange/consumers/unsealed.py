"""A consumer of the plain Avro records that ``UnsealedAvroProducer`` writes.

Baseline and smoke-test counterpart of the secure consumer: it checks nothing but the schema.
Never use it for traffic between agencies.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from exchange._internal.lifecycle import Lifecycle
from exchange.errors import RecordValidationError
from exchange.kafka_clients import HEADER_SCHEMA_FINGERPRINT, broker_error, consumer_config
from exchange.records import ExchangeRecord, RecordType, record_type_for_fingerprint

__all__ = ["ConsumedRecord", "UnsealedAvroConsumer"]


@dataclass(frozen=True)
class ConsumedRecord:
    """One decoded record and where it came from."""

    topic: str
    partition: int
    offset: int
    record_type: RecordType
    record: ExchangeRecord
    size: int


def _fingerprint(msg: Message) -> bytes:
    headers = msg.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    for name, value in pairs:
        if name == HEADER_SCHEMA_FINGERPRINT and isinstance(value, bytes):
            return value
    raise RecordValidationError(
        f"{msg.topic()}[{msg.partition()}]@{msg.offset()}: no schema fingerprint header"
    )


class UnsealedAvroConsumer:
    """Read plain Avro records (UNSAFE between agencies: nothing is verified).

    Example::

        with UnsealedAvroConsumer(bootstrap=b, group_id="smoke", client_id="smoke",
                                  topics=["smoke.seizure"]) as consumer:
            for item in consumer.records(idle_timeout=5.0):
                print(item.record.meta.record_id)
                consumer.commit(item)
    """

    def __init__(
        self,
        *,
        bootstrap: str,
        group_id: str,
        client_id: str,
        topics: Sequence[str],
        config_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self._consumer = Consumer(
            consumer_config(
                bootstrap, group_id=group_id, client_id=client_id, overrides=config_overrides
            )
        )
        self._consumer.subscribe(list(topics))
        self._lifecycle = Lifecycle("UnsealedAvroConsumer")

    def poll(self, timeout: float) -> ConsumedRecord | None:
        """Return the next record, or None when nothing arrived within ``timeout`` seconds.

        Raises:
            BrokerError: the broker reported an error.
            RecordValidationError: the message is not a valid record of a known schema.
        """
        self._lifecycle.check_open()
        msg = self._consumer.poll(timeout)
        if msg is None:
            return None
        if msg.error() is not None:
            raise broker_error("consume", KafkaException(msg.error()))
        value = msg.value() or b""
        fingerprint = _fingerprint(msg)
        rtype = record_type_for_fingerprint(fingerprint)
        record = rtype.decode(value, writer_fingerprint=fingerprint)
        return ConsumedRecord(
            topic=msg.topic() or "",
            partition=msg.partition() or 0,
            offset=msg.offset() or 0,
            record_type=rtype,
            record=record,
            size=len(value),
        )

    def records(self, *, idle_timeout: float, limit: int | None = None) -> Iterator[ConsumedRecord]:
        """Yield records until none arrives for ``idle_timeout`` seconds or ``limit`` is reached."""
        count = 0
        idle_since = time.monotonic()
        while limit is None or count < limit:
            item = self.poll(0.25)
            if item is None:
                if time.monotonic() - idle_since >= idle_timeout:
                    return
                continue
            idle_since = time.monotonic()
            count += 1
            yield item

    def commit(self, item: ConsumedRecord) -> None:
        """Commit the offset after ``item`` synchronously (call once the record is stored)."""
        self._lifecycle.check_open()
        try:
            self._consumer.commit(
                offsets=[TopicPartition(item.topic, item.partition, item.offset + 1)],
                asynchronous=False,
            )
        except KafkaException as exc:
            raise broker_error("commit", exc) from exc

    def close(self) -> None:
        if self._lifecycle.close():
            self._consumer.close()

    def __enter__(self) -> UnsealedAvroConsumer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
