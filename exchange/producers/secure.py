"""The secure producer: validate, encode, address by policy, seal, produce.

One path for every record (DESIGN.md, "Data flow")::

    record (pydantic) -> Avro bytes -> recipients = routing ∩ handling ∩ --to
        -> BatchSealer (DEK epoch + one signature per batch) -> Kafka (idempotent, acks=all)
        -> delivery report -> metrics -> audit entry (``publish``, one fsync per poll/flush)

A record that the sender may not address to a recipient is refused with a
:class:`~exchange.errors.PolicyError` before anything is sealed or sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from exchange._internal.lifecycle import Lifecycle
from exchange.audit import KafkaPosition
from exchange.audit.agency import AgencyAudit
from exchange.audit.pipeline import ProducerAuditQueue
from exchange.crypto import BatchSealer, DerivedFrom, EpochPolicy, PendingEnvelope
from exchange.crypto.keys import KeyProvider, SuiteId, TrustResolver
from exchange.errors import BrokerError, ExchangeError, PolicyError
from exchange.kafka_clients import (
    HEADER_RECORD_TYPE,
    HEADER_SENDER,
    broker_error,
    connection_settings,
    producer_config,
)
from exchange.metrics import DEFAULT_METRICS, ExchangeMetrics
from exchange.policy import allowed_recipients, check_addressing, summary_from_handling
from exchange.records import ExchangeRecord, RecordType, record_types
from exchange.routing import RoutingTable, check_prefix, exchange_topic, reach_for
from exchange.topics import TopicSpec, ensure_topics

__all__ = ["PublishSummary", "SecureProducer", "exchange_topic_spec"]

logger = logging.getLogger(__name__)

#: How long exchange topics keep envelopes: the transport window in which consumers and
#: auditors collect them. Record-level retention (``handling.retention``) is enforced by the
#: sinks that keep records for years; see docs/decisions/0004-topic-retention.md.
DEFAULT_TOPIC_RETENTION = timedelta(days=30)


def exchange_topic_spec(
    topic: str, *, partitions: int = 3, retention: timedelta = DEFAULT_TOPIC_RETENTION
) -> TopicSpec:
    """How an exchange topic is configured: bounded retention, no compaction.

    ``min.insync.replicas`` comes from the cluster default (2 on a three-node cluster).
    """
    return TopicSpec(
        topic,
        partitions=partitions,
        config={
            "cleanup.policy": "delete",
            "retention.ms": str(int(retention.total_seconds() * 1000)),
            # Envelopes carry their own creation time; keep the producer's.
            "message.timestamp.type": "CreateTime",
        },
    )


@dataclass
class PublishSummary:
    """What the broker acknowledged so far."""

    accepted: int = 0
    delivered: int = 0
    failed: list[str] = field(default_factory=list)
    bytes: int = 0


@dataclass(frozen=True)
class _Unsent:
    pending: PendingEnvelope
    topic: str
    key: bytes
    record_type: str


class SecureProducer:
    """Publish records signed and encrypted to the agencies their handling allows.

    Args:
        bootstrap: Kafka bootstrap servers.
        sender: this agency's key provider.
        trust: the trust store (recipients' KEM keys, publishing rights).
        routing: default recipients per sender and record type.
        suite: cipher suite of every envelope.
        max_batch: envelopes per batch signature.
        linger: longest a record waits for its batch to be signed.
        epoch_policy: DEK epoch bounds (count and age).
        topic_prefix: deployment prefix of every topic name (``exchange.routing``).
        topic_partitions / topic_retention: configuration of topics this producer creates.
        config_overrides: extra librdkafka settings (security, tuning); delivery guarantees
            are pinned (see :func:`exchange.kafka_clients.producer_config`).
        metrics: where counters go.
        clock: injectable clock (aware UTC datetimes).
        audit: the sender's audit log: every delivery report becomes a ``publish`` entry
            (appended with one fsync per :meth:`poll`/:meth:`flush`, checkpointed on
            :meth:`flush`). ``None`` logs nothing. A log that cannot be written stops the
            producer (the error propagates). The caller owns and closes ``audit``.

    Example::

        with SecureProducer(bootstrap=b, sender=fgr, trust=trust, routing=table) as producer:
            producer.publish(seizure)                    # recipients from routing ∩ handling
            producer.publish(request, to=["USA-ATF"])    # narrowed
        # leaving the block seals the last batch, flushes, raises BrokerError on failures
    """

    def __init__(
        self,
        *,
        bootstrap: str,
        sender: KeyProvider,
        trust: TrustResolver,
        routing: RoutingTable,
        suite: SuiteId = SuiteId.CLASSIC,
        max_batch: int = 64,
        linger: timedelta = timedelta(milliseconds=20),
        epoch_policy: EpochPolicy | None = None,
        topic_prefix: str = "",
        topic_partitions: int = 3,
        topic_retention: timedelta = DEFAULT_TOPIC_RETENTION,
        config_overrides: Mapping[str, Any] | None = None,
        metrics: ExchangeMetrics = DEFAULT_METRICS,
        clock: Callable[[], datetime] | None = None,
        audit: AgencyAudit | None = None,
    ) -> None:
        self._sender = sender
        self._agency = sender.agency_id
        self._trust = trust
        self._routing = routing
        self._suite = SuiteId(suite)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._linger_s = linger.total_seconds()
        self._sealer = BatchSealer(
            sender, trust, suite=self._suite, max_batch=max_batch, linger=linger,
            epoch_policy=epoch_policy, clock=self._clock,
        )  # fmt: skip
        self._overrides = dict(config_overrides or {})
        self._bootstrap = bootstrap
        self._producer = Producer(
            producer_config(bootstrap, client_id=self._agency, overrides=self._overrides)
        )
        self._prefix = check_prefix(topic_prefix)
        self._partitions = topic_partitions
        self._retention = topic_retention
        self._topics: set[str] = set()
        self._unsent: deque[_Unsent] = deque()
        self._oldest_unsent: float | None = None
        self._summary = PublishSummary()
        self._lock = threading.Lock()  # delivery callbacks run on the polling thread
        self._metrics = metrics
        self._types = {rt.model: rt for rt in record_types()}
        self._audit = None if audit is None else ProducerAuditQueue(audit)
        if audit is not None and audit.agency_id != self._agency:
            raise ValueError(f"got {audit.agency_id}'s audit log, expected {self._agency}'s")
        self._lifecycle = Lifecycle("SecureProducer")
        self._observe_key()

    @property
    def agency_id(self) -> str:
        return self._agency

    @property
    def summary(self) -> PublishSummary:
        """Counts so far (accepted by :meth:`publish`, delivered, failed)."""
        return self._summary

    def recipients_for(
        self, rtype: RecordType, record: ExchangeRecord, *, to: Iterable[str] | None = None
    ) -> frozenset[str]:
        """Who a record goes to: the routing table's targets for its type that its handling
        releases it to, narrowed to ``to`` when given (``to`` never widens them).

        Raises:
            PolicyError: ``to`` names an agency outside those recipients, or nobody is left
                to receive the record.
        """
        handling = summary_from_handling(record.handling)
        candidates = self._routing.targets(self._agency, rtype.name) & self._trust.agencies()
        recipients = allowed_recipients(handling, candidates, sender=self._agency)
        if to is not None:
            wanted = frozenset(to)
            outside = sorted(wanted - recipients)
            if outside:
                raise PolicyError(
                    f"cannot address {outside[0]}: not among this record's recipients "
                    "(the routing table's targets that its handling releases it to)"
                )
            recipients = wanted
        check_addressing(handling, sender=self._agency, recipients=sorted(recipients))
        return recipients

    def publish(
        self,
        record: ExchangeRecord,
        *,
        to: Iterable[str] | None = None,
        provenance: Iterable[DerivedFrom] = (),
    ) -> frozenset[str]:
        """Seal ``record`` to its recipients and enqueue it; return the recipients.

        The envelope is produced once its batch is signed (full, or ``linger`` passed, or on
        :meth:`flush`); delivery is confirmed by :meth:`flush`.

        Args:
            record: a validated record model.
            to: narrow the recipients to these agencies (each must be allowed anyway).
            provenance: parent messages of a derived record.

        Raises:
            PolicyError: the sender may not publish this type or address these recipients,
                or the record's retention has already ended.
            RecordValidationError: the record does not fit its schema.
            BrokerError: the producer failed.
        """
        self._lifecycle.check_open()
        rtype = self.record_type_of(record)
        retain_until = record.handling.retention.retain_until
        if retain_until is not None and retain_until < self._clock().date():
            raise PolicyError(
                f"record {record.meta.record_id}: retention ended {retain_until}; not published"
            )
        recipients = self.recipients_for(rtype, record, to=to)
        reach = reach_for(self._agency, recipients)
        topic = exchange_topic(self._agency, reach, rtype.name, prefix=self._prefix)
        self._ensure_topic(topic)
        began = time.perf_counter()
        pending = self._sealer.add(
            rtype.encode(record), recipients=sorted(recipients), record_type=rtype.name,
            schema_fingerprint=rtype.fingerprint, handling=summary_from_handling(record.handling),
            topic=topic, provenance=provenance,
        )  # fmt: skip
        self._metrics.seal_seconds.labels(suite=self._suite.value).observe(
            time.perf_counter() - began
        )
        self._unsent.append(_Unsent(pending, topic, record.meta.record_id.encode(), rtype.name))
        if self._oldest_unsent is None:
            self._oldest_unsent = time.monotonic()
        self._summary.accepted += 1
        self._produce_sealed()
        return recipients

    def poll(self, timeout: float = 0.0) -> None:
        """Sign a batch whose linger time is up, and serve delivery reports.

        Long-running publishers call this when idle so no record waits longer than
        ``linger`` for its signature.
        """
        self._lifecycle.check_open()
        if (
            self._oldest_unsent is not None
            and time.monotonic() - self._oldest_unsent >= self._linger_s
        ):
            self._sealer.flush()
            self._produce_sealed()
        self._producer.poll(timeout)
        if self._audit is not None:
            self._audit.drain()

    def _observe_key(self) -> None:
        now = self._clock()
        self._metrics.observe_key(self._sender.current_key(self._suite, at=now), now=now)

    def flush(self, timeout: float = 120.0) -> PublishSummary:
        """Sign the open batch, produce it, and wait for every delivery report.

        Raises:
            BrokerError: some record was not delivered, or ``timeout`` passed first.
        """
        self._sealer.flush()
        self._produce_sealed()
        self._observe_key()
        remaining = self._producer.flush(timeout)
        if self._audit is not None:
            # Failed deliveries are logged too (outcome failed), before raising below.
            self._audit.drain(checkpoint=True)
        if remaining:
            raise BrokerError(f"{remaining} envelope(s) still undelivered after {timeout:.0f} s")
        if self._summary.failed:
            raise BrokerError(
                f"{len(self._summary.failed)} envelope(s) not delivered; "
                f"first: {self._summary.failed[0]}"
            )
        return self._summary

    def close(self) -> None:
        if self._lifecycle.close():
            self.flush()

    def __enter__(self) -> SecureProducer:
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
            # Already failing: deliver what was sealed, but don't mask the original error.
            self._lifecycle.close()
            self._producer.flush(10)
            if self._audit is not None:
                try:
                    self._audit.drain()
                except ExchangeError:
                    # The block is failing already and the caller stops; log, don't mask it.
                    logger.exception("audit entries of the last deliveries were not written")

    def record_type_of(self, record: ExchangeRecord) -> RecordType:
        """The record type a model instance is published as.

        Raises:
            TypeError: ``record`` is not one of the record models.
        """
        rtype = self._types.get(type(record))
        if rtype is None:
            raise TypeError(f"got {type(record).__name__}, expected one of the record models")
        return rtype

    def _ensure_topic(self, topic: str) -> None:
        if topic in self._topics:
            return
        ensure_topics(
            self._bootstrap,
            [exchange_topic_spec(topic, partitions=self._partitions, retention=self._retention)],
            admin_config=connection_settings(self._overrides),
        )
        self._topics.add(topic)

    def _produce_sealed(self) -> None:
        while self._unsent and self._unsent[0].pending.done():
            item = self._unsent.popleft()
            envelope = item.pending.result()
            self._produce(item, envelope)
        self._oldest_unsent = time.monotonic() if self._unsent else None
        self._producer.poll(0)

    def _produce(self, item: _Unsent, envelope: bytes) -> None:
        headers: list[tuple[str, str | bytes | None]] = [
            (HEADER_SENDER, self._agency.encode()),
            (HEADER_RECORD_TYPE, item.record_type.encode()),
        ]
        labels = (self._agency, item.record_type, self._suite.value)

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            with self._lock:
                if err is None:
                    self._summary.delivered += 1
                    self._metrics.published.labels(*labels).inc()
                else:
                    self._summary.failed.append(f"{msg.topic()}: {err.str()}")
                    self._metrics.publish_failed.labels(self._agency, err.name()).inc()
                if self._audit is not None:
                    position = (
                        KafkaPosition(
                            msg.topic() or item.topic, msg.partition() or 0, msg.offset() or 0
                        )
                        if err is None
                        else None
                    )
                    self._audit.delivered(
                        item.pending, position=position, record_id=item.key, failed=err is not None
                    )

        while True:
            try:
                self._producer.produce(
                    item.topic, value=envelope, key=item.key, headers=headers,
                    on_delivery=on_delivery,
                )  # fmt: skip
                break
            except BufferError:
                # librdkafka's queue is full: serve delivery reports to make room.
                self._producer.poll(0.1)
            except KafkaException as exc:
                raise broker_error(f"produce to {item.topic}", exc) from exc
        self._summary.bytes += len(envelope)
