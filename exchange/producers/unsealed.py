"""A producer of plain Avro records, with no signature and no encryption.

It is the baseline the secure path is measured against (``bench/``) and the smoke test of a
broker and the record contracts. Anyone with access to the topic can read and forge what it
writes: never use it for traffic between agencies.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from exchange._internal.lifecycle import Lifecycle
from exchange.errors import BrokerError
from exchange.kafka_clients import (
    HEADER_RECORD_TYPE,
    HEADER_SCHEMA_FINGERPRINT,
    broker_error,
    producer_config,
)
from exchange.records import ExchangeRecord, RecordType

__all__ = ["UnsealedAvroProducer"]

logger = logging.getLogger(__name__)


@dataclass
class DeliveryTally:
    """What the broker acknowledged, updated from librdkafka's delivery callbacks."""

    delivered: int = 0
    failed: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        with self._lock:
            if err is None:
                self.delivered += 1
            else:
                self.failed.append(f"{msg.topic()}: {err.str()}")


class UnsealedAvroProducer:
    """Publish records as plain Avro (UNSAFE between agencies: no signature, no encryption).

    Example::

        from exchange.records import record_type
        with UnsealedAvroProducer(bootstrap="127.0.0.1:19092", client_id="smoke") as producer:
            producer.publish(record_type("seizure"), record, topic="smoke.seizure")
        # leaving the block flushes and raises BrokerError if anything was not delivered
    """

    def __init__(
        self,
        *,
        bootstrap: str,
        client_id: str,
        config_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self._producer = Producer(
            producer_config(bootstrap, client_id=client_id, overrides=config_overrides)
        )
        self._tally = DeliveryTally()
        self._lifecycle = Lifecycle("UnsealedAvroProducer")
        logger.warning("unsealed producer %s: records are neither signed nor encrypted", client_id)

    def publish(
        self,
        rtype: RecordType,
        record: ExchangeRecord,
        *,
        topic: str,
        key: bytes | None = None,
    ) -> int:
        """Validate, encode and enqueue one record; return its size in bytes.

        Raises:
            RecordValidationError: the record does not fit its schema.
            BrokerError: the local queue is full or the producer failed.
        """
        self._lifecycle.check_open()
        value = rtype.encode(record)
        headers: list[tuple[str, str | bytes | None]] = [
            (HEADER_RECORD_TYPE, rtype.name.encode()),
            (HEADER_SCHEMA_FINGERPRINT, rtype.fingerprint),
        ]
        while True:
            try:
                self._producer.produce(
                    topic,
                    value=value,
                    key=key,
                    headers=headers,
                    on_delivery=self._tally.on_delivery,
                )
                break
            except BufferError:
                # The local queue is full: serve delivery reports to make room, then retry.
                self._producer.poll(0.1)
            except KafkaException as exc:
                raise broker_error(f"produce to {topic}", exc) from exc
        self._producer.poll(0)
        return len(value)

    def flush(self, timeout: float = 60.0) -> int:
        """Wait for every enqueued record's delivery report; return how many were delivered.

        Raises:
            BrokerError: a record was not delivered, or the timeout passed first.
        """
        remaining = self._producer.flush(timeout)
        if remaining:
            raise BrokerError(f"{remaining} record(s) still undelivered after {timeout:.0f} s")
        if self._tally.failed:
            raise BrokerError(
                f"{len(self._tally.failed)} record(s) not delivered; first: {self._tally.failed[0]}"
            )
        return self._tally.delivered

    def close(self) -> None:
        if self._lifecycle.close():
            self.flush()

    def __enter__(self) -> UnsealedAvroProducer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
        else:
            # Already failing: don't mask the original error with a flush error.
            self._lifecycle.close()
            self._producer.flush(5)
