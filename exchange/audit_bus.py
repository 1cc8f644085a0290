"""The audit trail on Kafka: audit topics, receipt topics, and reading topics for auditors.

:mod:`exchange.audit` knows nothing of Kafka; this module is its Kafka edge
(docs/audit.md, "On the bus"):

``audit.<agency>`` (one partition, never deleted)
    every entry of the agency's log, in order (header ``kind: entry``, ``index``), then the
    signed checkpoint covering them (``kind: checkpoint``). Anyone with read access sees the
    checkpoints the log published, so a log that later shows another history is caught.
``receipts.<sender>`` (one partition)
    signed receipt notes from recipients, keyed by message id.

Example::

    writer = AuditTopicWriter(bootstrap=b, agency_id="MEX-FGR", topic_prefix=prefix)
    with AgencyAudit.open(directory, keys, publisher=writer) as audit: ...
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from exchange.audit.agency import AgencyAudit
from exchange.audit.auditor import Evidence, ObservedMessage
from exchange.audit.collect import ReceiptTally, collect_receipts
from exchange.crypto.keys import TrustResolver
from exchange.errors import BrokerError
from exchange.kafka_clients import KAFKA_LOGGER, broker_error, producer_config
from exchange.routing import audit_topic, parse_exchange_topic, receipts_topic
from exchange.topics import TopicSpec, ensure_topics

__all__ = [
    "AuditTopicWriter",
    "ReceiptSender",
    "TopicDump",
    "TopicMessage",
    "collect_receipts_from_bus",
    "gather_evidence",
    "list_topics",
    "read_topic",
]

HEADER_KIND: Final = "kind"
KIND_ENTRY: Final = b"entry"
KIND_CHECKPOINT: Final = b"checkpoint"
_KEEP_FOREVER: Final = {"retention.ms": "-1", "cleanup.policy": "delete"}


def _connection(overrides: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in overrides.items() if k.startswith(("security.", "ssl.", "sasl."))}


class _AckedProducer:
    """A producer whose :meth:`flush` raises unless every message was acknowledged."""

    def __init__(self, bootstrap: str, client_id: str, overrides: Mapping[str, Any]) -> None:
        self._producer = Producer(
            producer_config(bootstrap, client_id=client_id, overrides=overrides)
        )
        self._errors: list[str] = []

    def produce(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, str | bytes | None]]
    ) -> None:
        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                self._errors.append(err.str())

        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=on_delivery
                )
            except BufferError:
                self._producer.poll(0.1)
            except KafkaException as exc:
                raise broker_error(f"produce to {topic}", exc) from exc
            else:
                return

    def flush(self, what: str, timeout: float = 30.0) -> None:
        if self._producer.flush(timeout) or self._errors:
            error = self._errors[0] if self._errors else "no acknowledgement"
            # Drop what is still queued: the caller retries the whole publication, and the
            # old copies must not land later next to the new ones.
            self._producer.purge()
            self._producer.flush(0)
            self._errors.clear()
            raise BrokerError(f"{what} failed: {error}")


class AuditTopicWriter:
    """Publishes one agency's entries and checkpoints to ``audit.<agency>``.

    The topic is created on the first publication, so a run that logged nothing leaves no
    trace on the cluster.
    """

    def __init__(
        self,
        *,
        bootstrap: str,
        agency_id: str,
        topic_prefix: str = "",
        config_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self._overrides = dict(config_overrides or {})
        self._bootstrap = bootstrap
        self.topic = audit_topic(agency_id, prefix=topic_prefix)
        self._created = False
        self._producer = _AckedProducer(bootstrap, f"{agency_id}-audit", self._overrides)

    def publish(self, entries: Sequence[bytes], first_index: int, checkpoint: bytes) -> None:
        """Publish entries from ``first_index`` on, then the checkpoint; wait for the acks.

        Raises:
            BrokerError: the topic cannot be created, or the messages were not acknowledged.
        """
        if not self._created:
            spec = TopicSpec(self.topic, partitions=1, config=dict(_KEEP_FOREVER))
            ensure_topics(self._bootstrap, [spec], admin_config=_connection(self._overrides))
            self._created = True
        for i, data in enumerate(entries, start=first_index):
            headers: list[tuple[str, str | bytes | None]] = [
                (HEADER_KIND, KIND_ENTRY),
                ("index", str(i).encode()),
            ]
            self._producer.produce(self.topic, data, str(i).encode(), headers)
        self._producer.produce(
            self.topic, checkpoint, b"checkpoint", [(HEADER_KIND, KIND_CHECKPOINT)]
        )
        self._producer.flush(f"publishing the audit log to {self.topic}")


class ReceiptSender:
    """Sends signed receipts to ``receipts.<sender>``, creating those topics on first use."""

    def __init__(
        self,
        *,
        bootstrap: str,
        agency_id: str,
        topic_prefix: str = "",
        config_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self._prefix = topic_prefix
        self._overrides = dict(config_overrides or {})
        self._producer = _AckedProducer(bootstrap, f"{agency_id}-receipts", self._overrides)
        self._topics: set[str] = set()
        self.sent = 0

    def send(self, sender: str, message_id: uuid.UUID, receipt: bytes) -> None:
        """Queue ``receipt`` for ``sender``; :meth:`flush` confirms it.

        Raises:
            BrokerError: the topic cannot be created or the produce failed.
        """
        topic = receipts_topic(sender, prefix=self._prefix)
        if topic not in self._topics:
            spec = TopicSpec(topic, partitions=1, config=dict(_KEEP_FOREVER))
            ensure_topics(self._bootstrap, [spec], admin_config=_connection(self._overrides))
            self._topics.add(topic)
        self._producer.produce(topic, receipt, str(message_id).encode(), [])
        self.sent += 1

    def flush(self) -> None:
        """Wait until every queued receipt is acknowledged.

        Raises:
            BrokerError: a receipt was not acknowledged.
        """
        self._producer.flush("sending receipts")


@dataclass(frozen=True)
class TopicMessage:
    """One message as read from a topic (unverified bytes)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    kind: bytes | None = None


@dataclass
class TopicDump:
    """Every message of a topic and each partition's ``(low, high)`` watermarks."""

    topic: str
    messages: list[TopicMessage] = field(default_factory=list)
    watermarks: dict[int, tuple[int, int]] = field(default_factory=dict)


def list_topics(bootstrap: str, *, config_overrides: Mapping[str, Any] | None = None) -> list[str]:
    """Every topic name on the cluster.

    Raises:
        BrokerError: the cluster did not answer.
    """
    consumer = _reader(bootstrap, config_overrides)
    try:
        return sorted(consumer.list_topics(timeout=30).topics)
    except KafkaException as exc:
        raise broker_error("list topics", exc) from exc
    finally:
        consumer.close()


def read_topic(
    bootstrap: str,
    topic: str,
    *,
    config_overrides: Mapping[str, Any] | None = None,
    timeout: float = 60.0,
) -> TopicDump:
    """Read ``topic`` from each partition's low to high watermark (no group, nothing committed).

    Returns:
        The messages sorted by partition and offset; an empty dump for a missing topic.

    Raises:
        BrokerError: the topic could not be read to its end within ``timeout``.
    """
    consumer = _reader(bootstrap, config_overrides)
    dump = TopicDump(topic)
    try:
        described = consumer.list_topics(topic, timeout=30).topics.get(topic)
        if described is None or described.error is not None:
            return dump
        todo: dict[int, int] = {}
        for p in described.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            dump.watermarks[p] = (low, high)
            if high > low:
                todo[p] = high
        consumer.assign([TopicPartition(topic, p, dump.watermarks[p][0]) for p in todo])
        deadline = time.monotonic() + timeout
        while todo:
            if time.monotonic() > deadline:
                raise BrokerError(f"reading {topic}: did not reach the end within {timeout:.0f} s")
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            p, offset = msg.partition() or 0, msg.offset() or 0
            kind = dict(msg.headers() or []).get(HEADER_KIND)
            dump.messages.append(
                TopicMessage(
                    topic,
                    p,
                    offset,
                    msg.timestamp()[1],
                    msg.key(),
                    msg.value() or b"",
                    kind if isinstance(kind, bytes) else None,
                )
            )
            if offset + 1 >= todo.get(p, 0):
                todo.pop(p, None)
    except KafkaException as exc:
        raise broker_error(f"read {topic}", exc) from exc
    finally:
        consumer.close()
    dump.messages.sort(key=lambda m: (m.partition, m.offset))
    return dump


def _reader(bootstrap: str, overrides: Mapping[str, Any] | None) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"exchange-auditor-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "logger": KAFKA_LOGGER,
            **(overrides or {}),
        }
    )


def collect_receipts_from_bus(
    audit: AgencyAudit,
    *,
    bootstrap: str,
    trust: TrustResolver,
    topic_prefix: str = "",
    config_overrides: Mapping[str, Any] | None = None,
) -> ReceiptTally:
    """:func:`collect_receipts` over everything on ``receipts.<agency>``.

    Raises:
        BrokerError: the topic could not be read.
        AuditStorageError: the log could not be written.
    """
    topic = receipts_topic(audit.agency_id, prefix=topic_prefix)
    dump = read_topic(bootstrap, topic, config_overrides=config_overrides)
    return collect_receipts(audit, [m.value for m in dump.messages], trust=trust)


def gather_evidence(
    bootstrap: str,
    *,
    topic_prefix: str = "",
    config_overrides: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> Evidence:
    """Read every exchange, receipt and audit topic under ``topic_prefix`` for the auditor.

    Raises:
        BrokerError: a topic could not be read to its end.
    """
    evidence = Evidence()
    receipts_head = f"{topic_prefix}receipts."
    audit_head = f"{topic_prefix}audit."
    for topic in list_topics(bootstrap, config_overrides=config_overrides):
        if parse_exchange_topic(topic, prefix=topic_prefix) is not None:
            progress(f"reading {topic}")
            dump = read_topic(bootstrap, topic, config_overrides=config_overrides)
            for p, marks in dump.watermarks.items():
                evidence.watermarks[(topic, p)] = marks
            evidence.envelopes += [
                ObservedMessage(m.topic, m.partition, m.offset, m.timestamp_ms, m.value)
                for m in dump.messages
            ]
        elif topic.startswith(receipts_head):
            dump = read_topic(bootstrap, topic, config_overrides=config_overrides)
            sender = topic.removeprefix(receipts_head)
            evidence.receipts[sender] = [m.value for m in dump.messages]
        elif topic.startswith(audit_head):
            dump = read_topic(bootstrap, topic, config_overrides=config_overrides)
            agency = topic.removeprefix(audit_head)
            evidence.published_checkpoints[agency] = [
                (f"{topic}@{m.offset}", m.value) for m in dump.messages if m.kind == KIND_CHECKPOINT
            ]
    return evidence
