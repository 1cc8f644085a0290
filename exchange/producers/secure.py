"""The secure producer: validate, encode, address by policy, seal, produce.

One path for every record (DESIGN.md, "Data flow")::

    record (pydantic) -> Avro bytes -> recipients = routing ∩ handling ∩ --to
        -> BatchSealer (DEK epoch + one signature per batch) -> Kafka (idempotent, acks=all)
        -> delivery report -> metrics -> audit entry (``publish``, one fsync per poll/flush)

With an outbox (``outbox=``), every sealed batch is written to disk with one fsync before
librdkafka sees it, and sent from there in order; envelopes outlive an unreachable cluster
and a restart (:mod:`exchange.producers.outbox`, docs/decisions/0007-durable-outbox.md).

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
from pathlib import Path
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from exchange._internal.lifecycle import Lifecycle
from exchange.audit import KafkaPosition
from exchange.audit.agency import AgencyAudit
from exchange.audit.builders import EnvelopeFacts
from exchange.audit.pipeline import ProducerAuditQueue
from exchange.crypto import BatchSealer, DerivedFrom, EpochPolicy, PendingEnvelope
from exchange.crypto.keys import KeyProvider, SuiteId, TrustResolver
from exchange.errors import (
    BrokerError,
    ExchangeError,
    OutboxFullError,
    PolicyError,
    SpooledError,
)
from exchange.kafka_clients import (
    HEADER_RECORD_TYPE,
    HEADER_SENDER,
    broker_error,
    connection_settings,
    producer_config,
)
from exchange.metrics import DEFAULT_METRICS, ExchangeMetrics
from exchange.policy import (
    HandlingSummary,
    allowed_recipients,
    check_addressing,
    summary_from_handling,
)
from exchange.producers._delivery import cluster_absent
from exchange.producers._outbox_sender import OutboxSender
from exchange.producers.outbox import Outbox, OutboxEntry, Spool
from exchange.records import ExchangeRecord, RecordType, record_types
from exchange.routing import RoutingTable, check_prefix, exchange_topic, reach_for
from exchange.topics import TopicSpec, ensure_topics

__all__ = ["PublishSummary", "SecureProducer", "exchange_topic_spec"]

logger = logging.getLogger(__name__)

#: How long exchange topics keep envelopes: the transport window in which consumers and
#: auditors collect them. Record-level retention (``handling.retention``) is enforced by the
#: sinks that keep records for years; see docs/decisions/0004-topic-retention.md.
DEFAULT_TOPIC_RETENTION = timedelta(days=30)
#: With an outbox, how long creating a topic may block publish, and how often it is retried
#: while the cluster is away (publishing goes on: the topic's envelopes are spooled).
_TOPIC_TIMEOUT_S = 5.0
_TOPIC_RETRY_S = 10.0


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
    """What the broker acknowledged so far.

    Attributes:
        accepted: records :meth:`SecureProducer.publish` took.
        delivered: envelopes the brokers acknowledged (with an outbox, also envelopes an
            earlier run left in it).
        failed: one line per envelope refused for good (never retried).
        bytes: envelope bytes handed to librdkafka (with an outbox: bytes delivered).
        spooled: with an outbox, envelopes waiting in it after the last poll or flush:
            safe on disk, not yet acknowledged.
        drained: with an outbox, spooled envelopes delivered once the brokers answered.
    """

    accepted: int = 0
    delivered: int = 0
    failed: list[str] = field(default_factory=list)
    bytes: int = 0
    spooled: int = 0
    drained: int = 0


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
        linger: longest a record waits for its batch to be signed. 10 ms: below ~6,400
            msgs/s a batch is sealed by time, and the wait is most of the secure path's
            latency at modest rates; one signature per 10 ms costs little even for
            ``pq-hybrid`` (ML-DSA-65 signs in ~0.7 ms).
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
        outbox: a durable outbox (an :class:`~exchange.producers.outbox.Outbox`, or a
            directory to open one in, which the producer then closes). Sealed envelopes are
            written to it before they are sent, stay there while the brokers are unreachable,
            and are sent first, in order, by the next producer on the same directory.
            ``None`` (the default) keeps envelopes in memory only.

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
        linger: timedelta = timedelta(milliseconds=10),
        epoch_policy: EpochPolicy | None = None,
        topic_prefix: str = "",
        topic_partitions: int = 3,
        topic_retention: timedelta = DEFAULT_TOPIC_RETENTION,
        config_overrides: Mapping[str, Any] | None = None,
        metrics: ExchangeMetrics = DEFAULT_METRICS,
        clock: Callable[[], datetime] | None = None,
        audit: AgencyAudit | None = None,
        outbox: Outbox | Path | str | None = None,
    ) -> None:
        self._sender = sender
        self._agency = sender.agency_id
        self._trust = trust
        self._routing = routing
        self._targets: dict[str, frozenset[str]] = {}
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
        self._unensured: set[str] = set()
        self._topics_retry_at = 0.0
        self._unsent: deque[_Unsent] = deque()
        self._oldest_unsent: float | None = None
        self._summary = PublishSummary()
        self._lock = threading.Lock()  # delivery callbacks run on the polling thread
        self._metrics = metrics
        self._types = {rt.model: rt for rt in record_types()}
        self._audit = None if audit is None else ProducerAuditQueue(audit)
        if audit is not None and audit.agency_id != self._agency:
            raise ValueError(f"got {audit.agency_id}'s audit log, expected {self._agency}'s")
        self._owns_outbox = outbox is not None and not isinstance(outbox, Outbox)
        self._outbox = (
            outbox if isinstance(outbox, Outbox) or outbox is None else Outbox(Path(outbox))
        )
        self._outbox_sender: OutboxSender | None = None
        if self._outbox is not None:
            settled = _Settled(self._outbox_delivered, self._outbox_failed)
            self._outbox_sender = OutboxSender(
                self._producer, self._outbox, agency=self._agency, handler=settled,
                metrics=metrics,
            )  # fmt: skip
        self._lifecycle = Lifecycle("SecureProducer")
        self._observe_key()
        if self._outbox_sender is not None and self._outbox is not None:
            # An earlier run's envelopes go first, before anything this producer seals; their
            # topics are created on the first poll or flush if that run could not.
            self._summary.spooled = self._outbox.pending
            if self._outbox.pending:
                self._unensured |= self._outbox.pending_topics()
            self._outbox_sender.pump()

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
        return self._recipients(rtype, summary_from_handling(record.handling), to)

    def _recipients(
        self, rtype: RecordType, handling: HandlingSummary, to: Iterable[str] | None
    ) -> frozenset[str]:
        targets = self._targets.get(rtype.name)
        if targets is None:
            # The routing table is immutable: match its patterns once per record type, not
            # once per record.
            targets = self._targets[rtype.name] = self._routing.targets(self._agency, rtype.name)
        recipients = allowed_recipients(
            handling, targets & self._trust.agencies(), sender=self._agency
        )
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
        :meth:`flush`); delivery is confirmed by :meth:`flush`. With an outbox the signed
        batch is written to it (one fsync) before it is produced: from then on the record
        survives a crash and an unreachable cluster.

        Args:
            record: a validated record model.
            to: narrow the recipients to these agencies (each must be allowed anyway).
            provenance: parent messages of a derived record.

        Raises:
            PolicyError: the sender may not publish this type or address these recipients,
                or the record's retention has already ended.
            RecordValidationError: the record does not fit its schema.
            OutboxFullError: (outbox) the brokers have been away long enough to fill the
                outbox; the record was not accepted.
            BrokerError: the producer failed.
        """
        self._lifecycle.check_open()
        rtype = self.record_type_of(record)
        retain_until = record.handling.retention.retain_until
        if retain_until is not None and retain_until < self._clock().date():
            raise PolicyError(
                f"record {record.meta.record_id}: retention ended {retain_until}; not published"
            )
        handling = summary_from_handling(record.handling)
        recipients = self._recipients(rtype, handling, to)
        if self._outbox is not None and self._outbox.full():
            raise OutboxFullError(
                f"record {record.meta.record_id} not accepted: the outbox {self._outbox.directory} "
                f"holds {self._outbox.size_bytes} bytes of undelivered envelopes (bound "
                f"{self._outbox.max_bytes}); the brokers have not answered; flush and retry"
            )
        reach = reach_for(self._agency, recipients)
        topic = exchange_topic(self._agency, reach, rtype.name, prefix=self._prefix)
        self._ensure_topic(topic)
        began = time.perf_counter()
        pending = self._sealer.add(
            rtype.encode(record), recipients=sorted(recipients), record_type=rtype.name,
            schema_fingerprint=rtype.fingerprint, handling=handling, topic=topic,
            provenance=provenance,
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
        if self._outbox_sender is not None:
            self._retry_topics()
            self._outbox_sender.pump()
        self._producer.poll(timeout)
        if self._audit is not None:
            self._audit.drain()
        self._commit_outbox()

    def _commit_outbox(self) -> None:
        # After the audit entries of the deliveries are on disk: a crash in between re-sends
        # (stored once, the copy quarantined as `replay`), never leaves a delivery without
        # its entry.
        if self._outbox_sender is not None and self._outbox is not None:
            self._outbox_sender.commit()
            self._summary.spooled = self._outbox.pending
            self._summary.drained = self._outbox_sender.drained

    def _observe_key(self) -> None:
        now = self._clock()
        self._metrics.observe_key(self._sender.current_key(self._suite, at=now), now=now)

    def flush(self, timeout: float = 120.0) -> PublishSummary:
        """Sign the open batch, produce it, and wait for every delivery report.

        With an outbox, wait until it is empty: the brokers acknowledged every envelope in it
        (this run's and an earlier run's), or refused one for good.

        Raises:
            SpooledError: (outbox) ``timeout`` passed with envelopes still in the outbox; they
                are safe on disk and go first on the next poll, flush or start.
            BrokerError: some record was not delivered, or ``timeout`` passed first.
        """
        self._sealer.flush()
        self._produce_sealed()
        self._observe_key()
        if self._outbox_sender is not None:
            self._flush_outbox(self._outbox_sender, timeout)
            return self._check_failed()
        remaining = self._producer.flush(timeout)
        if self._audit is not None:
            # Failed deliveries are logged too (outcome failed), before raising below.
            self._audit.drain(checkpoint=True)
        if remaining:
            raise BrokerError(f"{remaining} envelope(s) still undelivered after {timeout:.0f} s")
        return self._check_failed()

    def _check_failed(self) -> PublishSummary:
        if self._summary.failed:
            raise BrokerError(
                f"{len(self._summary.failed)} envelope(s) not delivered; "
                f"first: {self._summary.failed[0]}"
            )
        return self._summary

    def _flush_outbox(self, sender: OutboxSender, timeout: float) -> None:
        assert self._outbox is not None  # noqa: S101  # a sender exists only with an outbox
        deadline = time.monotonic() + timeout
        while self._outbox.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._retry_topics()
            sender.pump()
            self._producer.poll(min(left, 0.1))
            if self._audit is not None:
                self._audit.drain()
            self._commit_outbox()
        self._commit_outbox()
        if self._outbox.pending:
            if self._audit is not None:
                # The entries only: the next successful flush checkpoints them.
                self._audit.drain()
            raise SpooledError(
                f"{self._outbox.pending} envelope(s) not yet acknowledged after {timeout:.0f} s "
                f"(brokers unreachable); they are safe in the outbox {self._outbox.directory} "
                "and are sent first by the next producer on it",
                spooled=self._outbox.pending,
                directory=str(self._outbox.directory),
            )
        if self._audit is not None:
            self._audit.drain(checkpoint=True)

    def close(self, timeout: float = 120.0) -> None:
        """Flush (waiting at most ``timeout``), then release the outbox: whatever is still
        in it stays on disk for the next producer on it.

        Raises:
            SpooledError, BrokerError: as :meth:`flush`.
        """
        if self._lifecycle.close():
            try:
                self.flush(timeout)
            finally:
                self._close_outbox()

    def _outbox_delivered(self, entry: OutboxEntry, facts: EnvelopeFacts, msg: Message) -> None:
        with self._lock:
            self._summary.delivered += 1
            self._summary.bytes += len(entry.envelope)
            suite = facts.header.suite.value
            self._metrics.published.labels(self._agency, entry.record_type, suite).inc()
            if self._audit is not None:
                position = KafkaPosition(
                    msg.topic() or entry.topic, msg.partition() or 0, msg.offset() or 0
                )
                self._audit.delivered(facts, position=position, record_id=entry.key, failed=False)

    def _outbox_failed(self, entry: OutboxEntry, facts: EnvelopeFacts, err: KafkaError) -> None:
        with self._lock:
            self._summary.failed.append(f"{entry.topic}: {err.str()}")
            self._metrics.publish_failed.labels(self._agency, err.name()).inc()
            if self._audit is not None:
                self._audit.delivered(facts, position=None, record_id=entry.key, failed=True)

    def _close_outbox(self) -> None:
        if self._outbox_sender is None or self._outbox is None:
            return
        self._outbox_sender.close()
        if self._audit is not None:
            self._audit.drain()
        self._commit_outbox()
        if self._owns_outbox:
            self._outbox.close()

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
            try:
                if self._outbox_sender is None:
                    self._producer.flush(10)
                else:
                    # What was spooled is safe on disk; give it a moment, then keep it there.
                    self._flush_outbox(self._outbox_sender, 10)
            except ExchangeError:
                logger.warning("envelopes left undelivered on the way out", exc_info=True)
            try:
                if self._audit is not None:
                    self._audit.drain()
                self._close_outbox()
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

    def _ensure_topic(self, topic: str, *, retrying: bool = False) -> None:
        if topic in self._topics:
            return
        if topic in self._unensured:
            return  # spooled until _retry_topics creates it; don't block every record on it
        spec = exchange_topic_spec(topic, partitions=self._partitions, retention=self._retention)
        admin = connection_settings(self._overrides)
        if self._outbox is None:
            ensure_topics(self._bootstrap, [spec], admin_config=admin)
        else:
            try:
                ensure_topics(self._bootstrap, [spec], admin_config=admin, timeout=_TOPIC_TIMEOUT_S)
            except BrokerError as exc:
                if not cluster_absent(exc):
                    raise
                # The cluster is away: the topic's envelopes are spooled (sending them fails
                # as retriable until the topic exists) and the topic is created once it answers.
                logger.log(
                    logging.DEBUG if retrying else logging.WARNING,
                    "cannot create topic %s now (%s); its envelopes wait in the outbox", topic, exc,
                )  # fmt: skip
                self._unensured.add(topic)
                self._topics_retry_at = time.monotonic() + _TOPIC_RETRY_S
                return
        self._topics.add(topic)

    def _retry_topics(self) -> None:
        """Create the topics an unreachable cluster could not, at most every few seconds."""
        if not self._unensured or time.monotonic() < self._topics_retry_at:
            return
        self._topics_retry_at = time.monotonic() + _TOPIC_RETRY_S
        for topic in sorted(self._unensured):
            self._unensured.discard(topic)
            self._ensure_topic(topic, retrying=True)
            if topic in self._unensured:
                return  # still away; try the rest next time

    def _produce_sealed(self) -> None:
        if self._outbox_sender is not None:
            self._spool_sealed(self._outbox_sender)
            return
        while self._unsent and self._unsent[0].pending.done():
            item = self._unsent.popleft()
            envelope = item.pending.result()
            self._produce(item, envelope)
        self._oldest_unsent = time.monotonic() if self._unsent else None
        self._producer.poll(0)

    def _spool_sealed(self, sender: OutboxSender) -> None:
        # One append and one fsync for everything sealed so far (a whole batch, usually).
        batch: list[tuple[Spool, PendingEnvelope]] = []
        while self._unsent and self._unsent[0].pending.done():
            item = self._unsent.popleft()
            envelope = item.pending.result()
            batch.append(((item.topic, item.key, item.record_type, envelope), item.pending))
        self._oldest_unsent = time.monotonic() if self._unsent else None
        if batch:
            sender.spool(list(batch))
        else:
            sender.pump()
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


@dataclass(frozen=True)
class _Settled:
    """Routes the outbox sender's final delivery reports to the producer."""

    delivered: Callable[[OutboxEntry, EnvelopeFacts, Message], None]
    failed: Callable[[OutboxEntry, EnvelopeFacts, KafkaError], None]
