"""The secure consumer: only verified, decrypted, schema-valid records reach the sink.

The consume path of DESIGN.md, per message::

    poll -> size bound -> verify (trust store, key valid at signing time, not revoked,
    publishing right, expiry) -> topic binding -> addressed to me? (else skip, never decrypt)
    -> unwrap DEK + decrypt + commitment -> Avro decode by writer fingerprint -> pydantic
    -> signed handling summary == the record's handling -> replay/duplicate/order (sink)
    -> sink (records + replay state + offsets in one transaction)
    -> audit: delivery entries (one fsync) + signed receipts to ``receipts.<sender>``
    -> receipt mark -> commit

With an audit log, the first batch after the first assignment is preceded by the recovery of
what a crash left (:meth:`exchange.audit.pipeline.ConsumerAudit.recover`): delivery entries
of records the sink stored past the log's receipt mark, and the receipts of every entry
after it.

Any failure sends the original bytes with a reason code to ``quarantine.<agency>`` and
consumption goes on. Exactly-once into the sink comes from the sink's own offsets: on
assignment the consumer seeks to them, so Kafka's committed offsets are only advisory.

The replay check runs after decryption because the sink judges complete records; decrypting
a replayed copy tells its legitimate recipient nothing new, and it is still refused.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from exchange._internal.lifecycle import Lifecycle
from exchange.audit import KafkaPosition
from exchange.audit.agency import AgencyAudit
from exchange.audit.pipeline import ConsumerAudit, Partition, Recovery
from exchange.audit_bus import ReceiptSender
from exchange.consumers._examine import MAX_ENVELOPE_BYTES, Accepted, EnvelopeExaminer, Refusal
from exchange.crypto import Opener, VerifiedEnvelope
from exchange.crypto.keys import KeyProvider, SuiteId, TrustResolver
from exchange.errors import BrokerError, IntegrityReason
from exchange.kafka_clients import broker_error, connection_settings, consumer_config
from exchange.metrics import DEFAULT_METRICS, ExchangeMetrics
from exchange.quarantine import QuarantineEntry, QuarantineWriter
from exchange.records import ExchangeRecord
from exchange.routing import check_prefix, exchange_topic_regex
from exchange.sinks import DeliveredRecord, ReplayVerdict, Sink

__all__ = ["ConsumeSummary", "RecordHandler", "SecureConsumer"]

logger = logging.getLogger(__name__)


#: Called with each record after it is safely stored in the sink.
RecordHandler = Callable[[DeliveredRecord, ExchangeRecord], None]

_Coordinates = tuple[str, int, int]

#: ``run(until_idle=...)``: how long the consumer may go without reaching the end of its
#: partitions (no assignment, an unreachable cluster, records waiting that never come).
DEFAULT_STALL_TIMEOUT_S = 300.0
#: How long re-reading one partition range for the crash recovery may take.
RECOVERY_READ_TIMEOUT_S = 120.0
#: How often a consumer without an assignment asks the cluster whether any exchange topic
#: exists (none: there is nothing to wait for).
_METADATA_EVERY_S = 5.0


@dataclass
class ConsumeSummary:
    """What a consumer did since it started."""

    delivered: int = 0
    duplicates: int = 0
    not_addressed: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())


class SecureConsumer:
    """Consume exchange topics for one agency into an exactly-once sink.

    Args:
        bootstrap: Kafka bootstrap servers.
        recipient: this agency's key provider.
        trust: the trust store.
        sink: where records, replay state and offsets are stored together.
        group_id: consumer group (default ``exchange.<agency>``).
        topic_prefix: deployment prefix of every topic name; the consumer subscribes to
            every exchange topic under it.
        accept_suites: suites accepted (default all); e.g. require ``pq-hybrid``.
        batch_size: messages per poll and per sink transaction.
        handler: called with each record after it is stored.
        config_overrides: extra librdkafka settings (security, tuning).
        metrics: where counters go.
        clock: injectable clock for expiry checks.
        audit: the recipient's audit log: delivery entries after each sink transaction
            (before the offset commit), a quarantine entry after each quarantine record,
            and a signed receipt per settled addressed message sent to
            ``receipts.<sender>``. ``None`` logs nothing. A log that cannot be written stops
            the consumer. Once the consumer first holds its partitions, it repairs what a
            crash left (``recovery`` says what). The caller owns and closes ``audit``.

    Example::

        with open_sink("sqlite:feeds.db") as sink, SecureConsumer(
            bootstrap=b, recipient=atf, trust=trust, sink=sink
        ) as consumer:
            summary = consumer.run(until_idle=10.0)
    """

    def __init__(
        self,
        *,
        bootstrap: str,
        recipient: KeyProvider,
        trust: TrustResolver,
        sink: Sink,
        group_id: str | None = None,
        topic_prefix: str = "",
        accept_suites: frozenset[SuiteId] | None = None,
        batch_size: int = 500,
        handler: RecordHandler | None = None,
        config_overrides: Mapping[str, Any] | None = None,
        metrics: ExchangeMetrics = DEFAULT_METRICS,
        clock: Callable[[], datetime] | None = None,
        audit: AgencyAudit | None = None,
    ) -> None:
        if not 1 <= batch_size <= 10_000:
            raise ValueError(f"got batch_size={batch_size}, expected 1..10000")
        self._agency = recipient.agency_id
        self._group = group_id or f"exchange.{self._agency}"
        self._sink = sink
        self._batch_size = batch_size
        self._handler = handler
        self._metrics = metrics
        self._clock = clock or (lambda: datetime.now(UTC))
        self._prefix = check_prefix(topic_prefix)
        self._examiner = EnvelopeExaminer(
            Opener(trust, recipient=recipient, accept_suites=accept_suites, clock=self._clock),
            agency_id=self._agency,
            topic_prefix=self._prefix,
            metrics=metrics,
        )
        overrides = {
            "max.partition.fetch.bytes": 2 * MAX_ENVELOPE_BYTES,
            # The subscription is a pattern: see a new agency's topic within 30 s, not the
            # default 5 minutes.
            "topic.metadata.refresh.interval.ms": 30_000,
            **(config_overrides or {}),
            # ``run(until_idle=...)`` counts idle time only once every assigned partition
            # was read to its end, which these events say.
            "enable.partition.eof": True,
        }
        self._consumer = Consumer(
            consumer_config(
                bootstrap, group_id=self._group, client_id=self._agency, overrides=overrides
            )
        )
        connection = connection_settings(overrides)
        self._bootstrap = bootstrap
        self._read_settings = {
            k: v for k, v in overrides.items() if k not in ("group.instance.id",)
        }
        # Created (with its topic) at the first quarantined message: a consumer started while
        # the cluster is down waits for it instead of failing on the topic creation.
        self._quarantine: QuarantineWriter | None = None
        self._new_quarantine: Callable[[], QuarantineWriter] = lambda: QuarantineWriter(
            bootstrap=bootstrap, agency_id=self._agency, topic_prefix=topic_prefix,
            config_overrides=connection, admin_config=connection,
        )  # fmt: skip
        self._audit: ConsumerAudit | None = None
        if audit is not None:
            if audit.agency_id != self._agency:
                raise ValueError(f"got {audit.agency_id}'s audit log, expected {self._agency}'s")
            receipts = ReceiptSender(
                bootstrap=bootstrap, agency_id=self._agency, topic_prefix=self._prefix,
                config_overrides=connection,
            )  # fmt: skip
            self._audit = ConsumerAudit(audit, recipient, receipts, self._clock)
        #: Set by the crash recovery (None: not run yet, or no audit log).
        self.recovery: Recovery | None = None
        self._topics = re.compile(exchange_topic_regex(self._prefix))
        #: The partitions held (None: no assignment yet) and those read to their end.
        self._assignment: set[tuple[str, int]] | None = None
        self._at_end: set[tuple[str, int]] = set()
        self._no_topics_checked = 0.0
        self._consumer.subscribe(
            [exchange_topic_regex(self._prefix)],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        self.summary = ConsumeSummary()
        self._lifecycle = Lifecycle("SecureConsumer")

    @property
    def group_id(self) -> str:
        return self._group

    def run(
        self,
        *,
        until_idle: float | None = None,
        max_messages: int | None = None,
        should_stop: Callable[[], bool] | None = None,
        poll_timeout: float = 0.5,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT_S,
    ) -> ConsumeSummary:
        """Consume until idle for ``until_idle`` seconds, ``max_messages`` handled, or stopped.

        With none of the three, runs until interrupted.

        Idle means caught up: the consumer holds its partitions and read each to its end
        (or the cluster has no exchange topic at all), and nothing came for ``until_idle``
        seconds. Before that the idle clock does not run, so a consumer started while the
        cluster is down or restarting does not stop with records still waiting.

        Raises:
            BrokerError: the broker failed in a way retries did not fix, or (with
                ``until_idle``) ``stall_timeout`` seconds passed without a message and
                without being caught up (the cluster unreachable, no partitions assigned).
            SinkError: the sink failed (nothing of the failed batch is stored or committed).
        """
        handled = 0
        idle_since: float | None = None
        progress_at = time.monotonic()
        while not (should_stop and should_stop()):
            count = self.poll_batch(poll_timeout)
            now = time.monotonic()
            if count:
                handled += count
                idle_since, progress_at = None, now
            elif until_idle is not None:
                if self.caught_up():
                    idle_since = now if idle_since is None else idle_since
                    progress_at = now
                    if now - idle_since >= until_idle:
                        break
                else:
                    idle_since = None
                    if now - progress_at >= stall_timeout:
                        raise BrokerError(self._stalled(stall_timeout))
            if max_messages is not None and handled >= max_messages:
                break
        return self.summary

    def caught_up(self) -> bool:
        """Every assigned partition was read to its end (nothing waits), or the cluster
        answered that no exchange topic exists; False without an assignment otherwise."""
        if self._assignment is None:
            return self._no_exchange_topic()
        return self._assignment <= self._at_end

    def _no_exchange_topic(self) -> bool:
        """Ask the cluster (at most every few seconds) whether any exchange topic exists."""
        now = time.monotonic()
        if now - self._no_topics_checked < _METADATA_EVERY_S:
            return False
        self._no_topics_checked = now
        try:
            topics = self._consumer.list_topics(timeout=2.0).topics
        except KafkaException:
            return False  # no answer: not known to be empty
        return not any(self._topics.match(t) for t in topics)

    def _stalled(self, timeout: float) -> str:
        if self._assignment is None:
            return (
                f"consume: no partitions assigned within {timeout:.0f} s (the cluster is "
                "unreachable, or the consumer group does not form); nothing was skipped"
            )
        waiting = sorted(self._assignment - self._at_end)
        shown = ", ".join(f"{t}[{p}]" for t, p in waiting[:3]) + (
            f" and {len(waiting) - 3} more" if len(waiting) > 3 else ""
        )
        return (
            f"consume: no message for {timeout:.0f} s while {shown} still had records to "
            "read (the cluster is unreachable?); what was stored is safe, rerun to resume"
        )

    def poll_batch(self, timeout: float) -> int:
        """Handle one polled batch end to end; return how many messages it held.

        Raises:
            BrokerError: a broker error other than end-of-partition.
            SinkError: the sink transaction failed.
        """
        self._lifecycle.check_open()
        messages = self._next_messages(timeout)
        if self._audit is not None and self.recovery is None and self._assignment is not None:
            # Assigned: the cluster answers. Before any new batch: positions past the sink's
            # offsets do not overlap what the recovery re-reads.
            self.recovery = self._audit.recover(
                self._group, self._sink.stored_offsets(self._group), self._stored_at,
                self._reread,
            )  # fmt: skip
        batch: list[tuple[Message, Accepted | Refusal | None]] = []
        for msg in messages:
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._at_end.add((msg.topic() or "", msg.partition() or 0))
                    continue
                if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    # The pattern subscription matches no topic yet (nobody has published):
                    # nothing to read, not a failure. Topics that appear later are picked up
                    # at the next metadata refresh.
                    logger.debug("no exchange topic yet: %s", error.str())
                    continue
                raise broker_error("consume", KafkaException(error))
            self._at_end.discard((msg.topic() or "", msg.partition() or 0))
            batch.append((msg, self._examiner.examine(msg)))
        if batch:
            self._settle(batch)
        return len(batch)

    def _next_messages(self, timeout: float) -> list[Message]:
        """Wait up to ``timeout`` for one message, then take whatever else is already queued,
        up to ``batch_size``.

        ``Consumer.consume(n, timeout)`` returns only when ``n`` messages arrived or the
        timeout passed, so at a modest rate every record waited out the whole poll timeout
        (0.5 s by default in ``run``). Here a batch is handled as soon as its first message is
        there; a backlog still comes in full batches.
        """
        first = self._consumer.poll(timeout)
        if first is None:
            return []
        if self._batch_size == 1:
            return [first]
        return [first, *self._consumer.consume(num_messages=self._batch_size - 1, timeout=0)]

    def close(self) -> None:
        if self._lifecycle.close():
            if self._quarantine is not None:
                self._quarantine.close()
            self._consumer.close()

    def __enter__(self) -> SecureConsumer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- one batch ---------------------------------------------------------------------

    def _settle(self, batch: list[tuple[Message, Accepted | Refusal | None]]) -> None:
        accepted = [outcome for _, outcome in batch if isinstance(outcome, Accepted)]
        # One verdict per accepted message, in batch order (a message id may repeat in a
        # batch: a replay can land next to its original).
        verdicts = iter(self._sink.check_batch([a.item for a in accepted]))
        to_store: list[tuple[Message, Accepted]] = []
        skipped: dict[tuple[str, int], int] = {}
        seen_here: dict[str, _Coordinates] = {}
        for msg, outcome in batch:
            coords = (msg.topic() or "", msg.partition() or 0, msg.offset() or 0)
            if outcome is None:
                self.summary.not_addressed += 1
            elif isinstance(outcome, Refusal):
                self._quarantine_message(msg, outcome)
            else:
                verdict = next(verdicts)
                if verdict is ReplayVerdict.FRESH:
                    to_store.append((msg, outcome))
                    seen_here[outcome.item.message_id] = coords
                    continue
                refusal = self._replay_refusal(outcome, verdict, coords, seen_here)
                if refusal is None:
                    self._redelivered(msg, outcome)
                else:
                    self._quarantine_message(msg, refusal)
            tp = (coords[0], coords[1])
            skipped[tp] = max(skipped.get(tp, -1), coords[2])
        result = self._sink.write(
            self._group, [a.item for _, a in to_store], skipped_offsets=skipped
        )
        for (msg, stored), verdict in zip(to_store, result.verdicts, strict=True):
            if verdict is ReplayVerdict.FRESH:
                self._delivered(msg, stored)
            elif verdict.integrity_reason is not None:
                # Another consumer sharing this sink stored the sequence between check and
                # write; the offset has advanced, so quarantine now to keep the evidence.
                self._quarantine_message(
                    msg,
                    Refusal(
                        verdict.integrity_reason.value,
                        "refused at write time: another consumer stored it first",
                        stored.verified,
                    ),
                )
        if self._audit is not None:
            # After the sink committed, before the offset commit. The sink does not redeliver
            # the batch after a crash here (it resumes from its own offsets): the next
            # start's recovery logs what is missing and resends the receipts.
            self._audit.finish_batch(self._group, _next_offsets(batch))
        self._commit(batch)

    def _stored_at(self, message_id: str) -> KafkaPosition | None:
        stored = self._sink.get(message_id)
        if stored is None:
            return None
        return KafkaPosition(stored.topic, stored.partition, stored.offset)

    def _reread(
        self, tp: Partition, start: int, end: int
    ) -> list[tuple[KafkaPosition, VerifiedEnvelope, str]]:
        """The addressed, verified messages of ``tp`` in ``[start, end)`` (crash recovery).

        Raises:
            BrokerError: the range could not be read within :data:`RECOVERY_READ_TIMEOUT_S`.
        """
        reader = Consumer(
            consumer_config(
                self._bootstrap, group_id=f"{self._group}.recovery",
                client_id=f"{self._agency}-recovery", overrides=self._read_settings,
            )
        )  # fmt: skip
        found: list[tuple[KafkaPosition, VerifiedEnvelope, str]] = []
        what = f"re-reading {tp[0]}[{tp[1]}] {start}..{end - 1} for the crash recovery"
        try:
            reader.assign([TopicPartition(tp[0], tp[1], start)])
            deadline = time.monotonic() + RECOVERY_READ_TIMEOUT_S
            while True:
                if time.monotonic() > deadline:
                    raise BrokerError(f"{what}: no end within {RECOVERY_READ_TIMEOUT_S:.0f} s")
                msg = reader.poll(0.5)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        break
                    raise broker_error(what, KafkaException(error))
                offset = msg.offset() or 0
                if offset >= end:
                    break
                outcome = self._examiner.examine(msg)
                if isinstance(outcome, Accepted):
                    found.append((_position(msg), outcome.verified, outcome.item.record_id))
                if offset + 1 >= end:
                    break
        except KafkaException as exc:
            raise broker_error(what, exc) from exc
        finally:
            reader.close()
        return found

    def _delivered(self, msg: Message, stored: Accepted) -> None:
        self.summary.delivered += 1
        self._metrics.delivered.labels(
            recipient=self._agency,
            sender=stored.item.sender,
            record_type=stored.item.record_type,
        ).inc()
        if self._audit is not None:
            self._audit.delivered(
                _position(msg), stored.verified, record_id=stored.item.record_id, duplicate=False
            )
        if self._handler is not None:
            self._handler(stored.item, stored.record)

    def _redelivered(self, msg: Message, accepted: Accepted) -> None:
        # The same envelope at the offset it was stored from: a benign redelivery.
        self.summary.duplicates += 1
        self._metrics.duplicates.labels(recipient=self._agency).inc()
        if self._audit is not None:
            self._audit.delivered(
                _position(msg), accepted.verified, record_id=accepted.item.record_id,
                duplicate=True,
            )  # fmt: skip

    def _replay_refusal(
        self,
        accepted: Accepted,
        verdict: ReplayVerdict,
        coords: _Coordinates,
        seen_here: dict[str, _Coordinates],
    ) -> Refusal | None:
        """None for a benign redelivery (same message at the same offset), else a refusal."""
        if verdict.integrity_reason is not None:
            return Refusal(verdict.integrity_reason.value, None, accepted.verified)
        # DUPLICATE: the same envelope again. At the offset it was stored from, it is a
        # redelivery after a crash; anywhere else it was injected again: a replay.
        message_id = accepted.item.message_id
        stored = self._sink.get(message_id)
        original = (
            (stored.topic, stored.partition, stored.offset)
            if stored is not None
            else seen_here.get(message_id)
        )
        if original == coords:
            return None
        where = "?" if original is None else f"{original[0]}[{original[1]}]@{original[2]}"
        return Refusal(
            IntegrityReason.REPLAY.value,
            f"message already delivered from {where}",
            accepted.verified,
        )

    def _quarantine_message(self, msg: Message, refusal: Refusal) -> None:
        verified = refusal.verified
        _, timestamp = msg.timestamp()
        entry = QuarantineEntry.of(
            consumer=self._agency,
            reason=refusal.reason,
            detail=refusal.detail,
            topic=msg.topic() or "",
            partition=msg.partition() or 0,
            offset=msg.offset() or 0,
            value=msg.value() or b"",
            key=msg.key(),
            timestamp_ms=timestamp if timestamp > 0 else None,
            verified_sender=None if verified is None else verified.header.sender.agency_id,
            message_id=None if verified is None else str(verified.message_id),
        )
        if self._quarantine is None:
            self._quarantine = self._new_quarantine()
        self._quarantine.write(entry)
        if self._audit is not None:
            self._audit.quarantined(_position(msg), refusal.reason, verified)
        self._count_quarantine(refusal.reason)
        logger.warning(
            "quarantined %s[%d]@%d: %s",
            entry.source_topic,
            entry.source_partition,
            entry.source_offset,
            refusal.reason,
        )

    def _count_quarantine(self, reason: str) -> None:
        self.summary.quarantined[reason] += 1
        self._metrics.quarantined.labels(recipient=self._agency, reason=reason).inc()

    def _commit(self, batch: list[tuple[Message, Accepted | Refusal | None]]) -> None:
        # Advisory: the sink holds the real position. Committing keeps group tooling and lag
        # monitoring meaningful.
        last: dict[tuple[str, int], int] = {}
        for msg, _ in batch:
            key = (msg.topic() or "", msg.partition() or 0)
            last[key] = max(last.get(key, -1), msg.offset() or 0)
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            logger.warning("advisory offset commit failed: %s", exc)
        for (t, p), o in last.items():
            _, high = self._consumer.get_watermark_offsets(TopicPartition(t, p), cached=True)
            if high is not None and high >= 0:
                self._metrics.consumer_lag.labels(self._agency, t, str(p)).set(max(high - o - 1, 0))

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Exactly-once: resume where the sink says, not where Kafka's commits say.
        stored = self._sink.stored_offsets(self._group)
        for tp in partitions:
            offset = stored.get((tp.topic, tp.partition))
            if offset is not None:
                tp.offset = offset
        consumer.assign(partitions)
        held = {(tp.topic, tp.partition) for tp in partitions}
        self._assignment = (self._assignment or set()) | held
        self._at_end -= held

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = {(tp.topic, tp.partition) for tp in partitions}
        if self._assignment is not None:
            self._assignment -= gone
        self._at_end -= gone
        # The client unassigns them itself once the callback returns.


def _next_offsets(batch: list[tuple[Message, Accepted | Refusal | None]]) -> dict[Partition, int]:
    last: dict[Partition, int] = {}
    for msg, _ in batch:
        key = (msg.topic() or "", msg.partition() or 0)
        last[key] = max(last.get(key, 0), (msg.offset() or 0) + 1)
    return last


def _position(msg: Message) -> KafkaPosition:
    return KafkaPosition(msg.topic() or "", msg.partition() or 0, msg.offset() or 0)
