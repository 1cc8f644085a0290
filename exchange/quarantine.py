"""Quarantine: where consumers put every message they refuse, with the evidence.

Nothing is dropped silently: a message that fails any check is written to
``quarantine.<agency>`` as a :class:`QuarantineEntry` (schema
``schemas/avro/quarantine/v1.avsc``) holding the original bytes, the reason code and the
source coordinates, before the consumer moves past it. Entries never hold record content
(the original bytes are the envelope, still encrypted) nor personal data.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import fastavro
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from exchange.errors import BrokerError, RecordValidationError
from exchange.kafka_clients import KAFKA_LOGGER, broker_error, producer_config
from exchange.records import schema_root
from exchange.routing import quarantine_topic
from exchange.topics import TopicSpec, ensure_topics

__all__ = [
    "QUARANTINE_VALUE_LIMIT",
    "QuarantineEntry",
    "QuarantineWriter",
    "read_quarantine",
]

#: Original bytes kept per entry; a longer value is cut (its size and SHA-256 stay whole).
QUARANTINE_VALUE_LIMIT = 1 << 20
_MAX_ENTRY_BYTES = QUARANTINE_VALUE_LIMIT + (64 << 10)


@cache
def _schema() -> Any:
    with (schema_root() / "quarantine" / "v1.avsc").open(encoding="utf-8") as f:
        return fastavro.parse_schema(json.load(f))


@dataclass(frozen=True)
class QuarantineEntry:
    """One refused message. ``detail`` never carries record content."""

    quarantine_id: str
    consumer: str
    reason: str
    detail: str | None
    quarantined_at: datetime
    source_topic: str
    source_partition: int
    source_offset: int
    source_timestamp: datetime | None
    verified_sender: str | None
    message_id: str | None
    key: bytes | None
    value: bytes
    value_size: int
    value_sha256: bytes

    @classmethod
    def of(
        cls,
        *,
        consumer: str,
        reason: str,
        topic: str,
        partition: int,
        offset: int,
        value: bytes,
        key: bytes | None = None,
        timestamp_ms: int | None = None,
        detail: str | None = None,
        verified_sender: str | None = None,
        message_id: str | None = None,
        now: datetime | None = None,
    ) -> QuarantineEntry:
        """An entry for a refused message, cutting the kept bytes at the limit."""
        return cls(
            quarantine_id=str(uuid.uuid4()),
            consumer=consumer,
            reason=reason,
            detail=detail,
            quarantined_at=now or datetime.now(UTC),
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            source_timestamp=(
                None if timestamp_ms is None else datetime.fromtimestamp(timestamp_ms / 1000, UTC)
            ),
            verified_sender=verified_sender,
            message_id=message_id,
            key=key,
            value=value[:QUARANTINE_VALUE_LIMIT],
            value_size=len(value),
            value_sha256=hashlib.sha256(value).digest(),
        )

    def encode(self) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(
            out,
            _schema(),
            {
                "quarantineId": self.quarantine_id,
                "consumer": self.consumer,
                "reason": self.reason,
                "detail": self.detail,
                "quarantinedAt": self.quarantined_at,
                "sourceTopic": self.source_topic,
                "sourcePartition": self.source_partition,
                "sourceOffset": self.source_offset,
                "sourceTimestamp": self.source_timestamp,
                "verifiedSender": self.verified_sender,
                "messageId": self.message_id,
                "key": self.key,
                "value": self.value,
                "valueSize": self.value_size,
                "valueSha256": self.value_sha256,
            },
        )
        return out.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> QuarantineEntry:
        """Raises: RecordValidationError: the bytes are not a quarantine entry."""
        if len(data) > _MAX_ENTRY_BYTES:
            raise RecordValidationError(f"quarantine entry of {len(data)} bytes is too large")
        try:
            d = fastavro.schemaless_reader(io.BytesIO(data), _schema(), None)
        except Exception as exc:  # noqa: BLE001 - fastavro raises many types on bad input
            raise RecordValidationError(f"not a quarantine entry: {type(exc).__name__}") from None
        if not isinstance(d, dict):
            raise RecordValidationError("not a quarantine entry")
        return cls(
            quarantine_id=str(d["quarantineId"]),
            consumer=d["consumer"],
            reason=d["reason"],
            detail=d["detail"],
            quarantined_at=d["quarantinedAt"],
            source_topic=d["sourceTopic"],
            source_partition=d["sourcePartition"],
            source_offset=d["sourceOffset"],
            source_timestamp=d["sourceTimestamp"],
            verified_sender=d["verifiedSender"],
            message_id=None if d["messageId"] is None else str(d["messageId"]),
            key=d["key"],
            value=d["value"],
            value_size=d["valueSize"],
            value_sha256=d["valueSha256"],
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready view without the raw bytes (what ``exchange quarantine list`` prints)."""
        return {
            "quarantineId": self.quarantine_id,
            "consumer": self.consumer,
            "reason": self.reason,
            "detail": self.detail,
            "quarantinedAt": self.quarantined_at.isoformat(),
            "source": f"{self.source_topic}[{self.source_partition}]@{self.source_offset}",
            "verifiedSender": self.verified_sender,
            "messageId": self.message_id,
            "valueSize": self.value_size,
            "valueSha256": self.value_sha256.hex(),
        }


class QuarantineWriter:
    """Writes entries to ``quarantine.<agency>`` and waits for the broker's acknowledgement.

    The consumer calls :meth:`write` and only then stores the refused message's offset as
    handled: an entry is never lost, at worst written twice after a crash (readers can tell
    by the source coordinates).
    """

    def __init__(
        self,
        *,
        bootstrap: str,
        agency_id: str,
        topic_prefix: str = "",
        config_overrides: Mapping[str, Any] | None = None,
        admin_config: Mapping[str, str] | None = None,
    ) -> None:
        self.topic = quarantine_topic(agency_id, prefix=topic_prefix)
        ensure_topics(
            bootstrap,
            [TopicSpec(self.topic, partitions=1, config={"max.message.bytes": str(2 << 20)})],
            admin_config=admin_config,
        )
        overrides = {"message.max.bytes": 2 << 20, **(config_overrides or {})}
        self._producer = Producer(
            producer_config(bootstrap, client_id=f"{agency_id}-quarantine", overrides=overrides)
        )
        self._errors: list[str] = []

    def write(self, entry: QuarantineEntry, *, timeout: float = 30.0) -> None:
        """Write one entry and wait until the broker acknowledged it.

        Raises:
            BrokerError: the entry was not acknowledged within ``timeout``.
        """

        def on_delivery(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                self._errors.append(err.str())

        try:
            self._producer.produce(
                self.topic, value=entry.encode(), key=entry.source_topic.encode(),
                on_delivery=on_delivery,
            )  # fmt: skip
        except KafkaException as exc:
            raise broker_error(f"quarantine to {self.topic}", exc) from exc
        if self._producer.flush(timeout) or self._errors:
            error = self._errors.pop() if self._errors else "no acknowledgement"
            raise BrokerError(f"quarantine to {self.topic} failed: {error}")

    def close(self) -> None:
        self._producer.flush(30)


def read_quarantine(
    bootstrap: str,
    agency_id: str,
    *,
    topic_prefix: str = "",
    config_overrides: Mapping[str, Any] | None = None,
    timeout: float = 30.0,
) -> Iterator[QuarantineEntry]:
    """Every entry in ``quarantine.<agency>`` from the beginning to the current end.

    Reads with ``assign`` (no consumer group, nothing committed), so inspecting the
    quarantine never moves anyone's position.

    Raises:
        BrokerError: the topic cannot be read.
        RecordValidationError: an entry is not a valid quarantine record.
    """
    topic = quarantine_topic(agency_id, prefix=topic_prefix)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{agency_id}-quarantine-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "logger": KAFKA_LOGGER,
            **(config_overrides or {}),
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
        described = metadata.topics.get(topic)
        if described is None or described.error is not None:
            return
        partitions = list(described.partitions)
        open_partitions = set(partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        while open_partitions:
            msg = consumer.poll(timeout)
            if msg is None:
                raise BrokerError(f"reading {topic}: no answer within {timeout:.0f} s")
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    open_partitions.discard(msg.partition() or 0)
                    continue
                raise broker_error(f"read {topic}", KafkaException(error))
            yield QuarantineEntry.decode(msg.value() or b"")
    finally:
        consumer.close()
