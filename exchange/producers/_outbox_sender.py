"""Sending from the outbox: in order, a bounded window in flight, spooling while unreachable.

Every sealed envelope is in the :class:`~exchange.producers.outbox.Outbox` before librdkafka
sees it. The sender hands entries to librdkafka in outbox order, never one whose sequence is
``window`` or more past the oldest unsettled entry: that bounds both memory (librdkafka and
this module hold at most ``window`` envelopes; the rest is read back from disk) and how far
a later envelope can overtake an earlier one, which consumers' replay windows
(``exchange.sinks._replay.WINDOW_SIZE``, 1024) must absorb.

When a delivery report says the cluster is absent (``_delivery.may_get_through``) the sender
*spools*: it hands nothing new to librdkafka, waits for the reports of what is in flight,
then probes with the oldest unsettled entry, backing off between failed probes. The probe's
success ends spooling and the backlog drains in order through the window again.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException, Message

from exchange.audit.builders import EnvelopeFacts
from exchange.crypto import EnvelopeHeader
from exchange.crypto._avro import AvroFormatError
from exchange.crypto.envelope import aad, decode_envelope, signing_digest
from exchange.crypto.header import decode_header
from exchange.errors import OutboxCorruptError
from exchange.kafka_clients import HEADER_RECORD_TYPE, HEADER_SENDER, broker_error
from exchange.metrics import ExchangeMetrics
from exchange.producers._delivery import may_get_through
from exchange.producers.outbox import Outbox, OutboxEntry, Spool

__all__ = ["DeliveryHandler", "OutboxSender", "StoredFacts", "Transport"]

_log = logging.getLogger("exchange.producers.outbox")

#: Envelopes in flight at most; below the consumers' replay window (1024) with room to spare.
DEFAULT_WINDOW = 512
#: First and longest pause between failed probes of an absent cluster.
_BACKOFF_FIRST_S = 0.5
_BACKOFF_MAX_S = 10.0


@dataclass(frozen=True)
class StoredFacts:
    """What an audit entry needs of an envelope read back from the outbox (an earlier run).

    Computed from our own envelope bytes with the sealer's digests; nothing is verified,
    because the outbox's checksum already says these are the bytes the sealer wrote.
    """

    header: EnvelopeHeader
    signing_digest: bytes
    header_digest: bytes

    @classmethod
    def of(cls, entry: OutboxEntry) -> StoredFacts:
        """Raises: OutboxCorruptError: the bytes are not an envelope (a writer bug)."""
        try:
            raw = decode_envelope(entry.envelope)
            header = decode_header(raw.header_bytes)
        except AvroFormatError:
            raise OutboxCorruptError(
                f"outbox entry {entry.seq} does not hold a well-formed envelope"
            ) from None
        return cls(
            header,
            signing_digest(header.suite, raw.header_bytes, raw.wraps, raw.ciphertext),
            aad(header.suite, raw.header_bytes),
        )


class Transport(Protocol):
    """The part of ``confluent_kafka.Producer`` the sender uses."""

    def produce(
        self,
        topic: str,
        *,
        value: bytes,
        key: bytes,
        headers: list[tuple[str, str | bytes | None]],
        on_delivery: Callable[[KafkaError | None, Message], None],
    ) -> None: ...

    def poll(self, timeout: float) -> int: ...

    def purge(self, in_queue: bool, in_flight: bool) -> None: ...


class DeliveryHandler(Protocol):
    """What the producer does with each settled delivery report."""

    def delivered(self, entry: OutboxEntry, facts: EnvelopeFacts, msg: Message) -> None: ...

    def failed(self, entry: OutboxEntry, facts: EnvelopeFacts, err: KafkaError) -> None: ...


class OutboxSender:
    """Hands outbox entries to librdkafka in order and settles them from delivery reports.

    Args:
        producer: the idempotent librdkafka producer.
        outbox: the open outbox (its entries from an earlier run are sent first).
        agency: the sending agency (Kafka routing header, metric labels).
        handler: summary, metrics and audit of settled reports.
        metrics: outbox gauges and counters.
        window: envelopes in flight at most (see the module docstring).
        clock: monotonic seconds (injectable).
    """

    def __init__(
        self,
        producer: Transport,
        outbox: Outbox,
        *,
        agency: str,
        handler: DeliveryHandler,
        metrics: ExchangeMetrics,
        window: int = DEFAULT_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < window < 1024:
            raise ValueError(f"window: got {window}, expected 1 to 1023")
        self._producer = producer
        self._outbox = outbox
        self._agency = agency
        self._handler = handler
        self._metrics = metrics
        self._window = window
        self._clock = clock
        # Unsent entries [_next, _fill) kept in memory (with the sealer's facts); entries from
        # _fill on are only on disk until the window reaches them.
        self._queue: deque[tuple[OutboxEntry, EnvelopeFacts | None]] = deque()
        self._next = outbox.settled_below
        self._fill = outbox.settled_below
        self._in_flight = 0
        self._spooling = False
        self._rewind = False
        self._probe: int | None = None
        self._backoff = _BACKOFF_FIRST_S
        self._retry_at = 0.0
        self._spooling_since = 0.0
        self._closed = False
        # Envelopes below _drain_until were spooled when the cluster came back (or at start).
        self._counted_below = outbox.next_seq
        self._drain_until = outbox.next_seq if outbox.pending else None
        self._drain_began = clock()
        self._drain_count = 0
        self._drained = 0
        if outbox.pending:
            self._metrics.outbox_spooled.labels(agency).inc(outbox.pending)
        self._update_gauges()

    @property
    def spooling(self) -> bool:
        """True while the cluster is unreachable and envelopes only go to disk."""
        return self._spooling

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def drained(self) -> int:
        """Spooled envelopes delivered since this sender began."""
        return self._drained

    def spool(self, items: list[tuple[Spool, EnvelopeFacts]]) -> None:
        """Append sealed envelopes to the outbox (one fsync), then send what the window allows.

        Raises:
            OutboxError: the disk failed; the envelopes are not durable.
        """
        entries = self._outbox.append([spool for spool, _ in items])
        for entry, (_, facts) in zip(entries, items, strict=True):
            # Keep the envelope in memory only while everything before it is in memory too
            # and the queue is within the window; otherwise the disk has it.
            if self._fill == entry.seq and len(self._queue) < self._window:
                self._queue.append((entry, facts))
                self._fill = entry.seq + 1
        if self._spooling:
            self._metrics.outbox_spooled.labels(self._agency).inc(len(entries))
            self._counted_below = self._outbox.next_seq
        self.pump()

    def pump(self) -> None:
        """Hand entries to librdkafka: within the window, or one probe while spooling.

        Raises:
            BrokerError: librdkafka refused an envelope outright (not a delivery failure).
            OutboxError, OutboxCorruptError: the outbox could not be read back.
        """
        if self._closed:
            return
        if self._rewind:
            if self._in_flight:
                return
            # Everything in flight has reported: start again at the oldest unsettled entry,
            # so the drain is in order whatever was delivered meanwhile.
            self._queue.clear()
            self._next = self._fill = self._outbox.settled_below
            self._rewind = False
        if self._spooling:
            if self._in_flight or self._clock() < self._retry_at:
                return
            probe = self._take()
            if probe is not None:
                self._probe = probe[0].seq
                self._send(*probe)
            return
        limit = self._outbox.settled_below + self._window
        while self._next < limit:
            item = self._take()
            if item is None or item[0].seq >= limit:
                if item is not None:
                    self._queue.appendleft(item)
                    self._next = item[0].seq
                break
            self._send(*item)
        self._update_gauges()

    def _take(self) -> tuple[OutboxEntry, EnvelopeFacts | None] | None:
        """The next unsettled entry at or after ``_next``, from memory or from disk."""
        while True:
            if not self._queue:
                if self._fill >= self._outbox.next_seq:
                    return None
                read = self._outbox.read_from(max(self._fill, self._next))
                if not read:
                    self._next = self._fill = self._outbox.next_seq
                    return None
                # Bounded by one segment; trimmed to the window so memory stays flat.
                for entry in read[: self._window]:
                    self._queue.append((entry, None))
                self._fill = self._queue[-1][0].seq + 1
            entry, facts = self._queue.popleft()
            self._next = entry.seq + 1
            if not self._outbox.is_settled(entry.seq):
                return entry, facts

    def _send(self, entry: OutboxEntry, facts: EnvelopeFacts | None) -> None:
        headers: list[tuple[str, str | bytes | None]] = [
            (HEADER_SENDER, self._agency.encode()),
            (HEADER_RECORD_TYPE, entry.record_type.encode()),
        ]

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            self._report(entry, facts, err, msg)

        while True:
            try:
                self._producer.produce(
                    entry.topic, value=entry.envelope, key=entry.key, headers=headers,
                    on_delivery=on_delivery,
                )  # fmt: skip
                break
            except BufferError:
                # librdkafka's queue is full (its own bound): serve reports to make room.
                self._producer.poll(0.1)
            except KafkaException as exc:
                raise broker_error(f"produce to {entry.topic}", exc) from exc
        self._in_flight += 1

    def _report(
        self,
        entry: OutboxEntry,
        facts: EnvelopeFacts | None,
        err: KafkaError | None,
        msg: Message,
    ) -> None:
        self._in_flight -= 1
        if self._closed:
            return  # purged on close: the entry stays in the outbox for the next start
        if err is not None and may_get_through(err):
            self._spool_after(err)
            return
        self._outbox.settle(entry.seq)
        known = facts if facts is not None else StoredFacts.of(entry)
        if err is None:
            self._handler.delivered(entry, known, msg)
            self._after_delivery(entry)
        else:
            self._handler.failed(entry, known, err)

    def _spool_after(self, err: KafkaError) -> None:
        now = self._clock()
        if self._spooling:
            if not self._rewind:
                # The probe itself failed: the cluster is still away; wait longer.
                self._backoff = min(self._backoff * 2, _BACKOFF_MAX_S)
        else:
            self._spooling = True
            self._spooling_since = now
            self._backoff = _BACKOFF_FIRST_S
            fresh = self._outbox.next_seq - max(self._counted_below, self._outbox.settled_below)
            if fresh > 0:
                self._metrics.outbox_spooled.labels(self._agency).inc(fresh)
            self._counted_below = self._outbox.next_seq
            _log.warning(
                "brokers unreachable (%s): spooling to outbox %s; %d envelope(s) wait there, "
                "new ones go only to disk until the cluster answers",
                err.name(), self._outbox.directory, self._outbox.pending,
            )  # fmt: skip
        self._rewind = True
        self._retry_at = now + self._backoff

    def _after_delivery(self, entry: OutboxEntry) -> None:
        if self._spooling:
            if entry.seq != self._probe:
                # A late success of an envelope sent before the outage began; only the
                # probe, sent after every earlier report was in, says the cluster is back.
                return
            self._spooling = False
            self._probe = None
            self._drain_until = self._outbox.next_seq
            self._drain_began = self._clock()
            self._drain_count = 0
            _log.warning(
                "brokers reachable again after %.1f s: draining %d envelope(s) from outbox %s",
                self._drain_began - self._spooling_since, self._outbox.pending,
                self._outbox.directory,
            )  # fmt: skip
        if self._drain_until is None or entry.seq >= self._drain_until:
            return
        self._drained += 1
        self._drain_count += 1
        self._metrics.outbox_drained.labels(self._agency).inc()
        if self._outbox.settled_below >= self._drain_until:
            _log.warning(
                "outbox drained %d envelope(s) in %.1f s",
                self._drain_count, self._clock() - self._drain_began,
            )  # fmt: skip
            self._drain_until = None

    def _update_gauges(self) -> None:
        self._metrics.outbox_depth.labels(self._agency).set(self._outbox.pending)
        self._metrics.outbox_bytes.labels(self._agency).set(self._outbox.size_bytes)

    def commit(self) -> None:
        """Persist the low-water mark (after the audit entries of the deliveries are written).

        Raises:
            OutboxError: the disk failed.
        """
        self._outbox.commit()
        self._update_gauges()

    def close(self) -> None:
        """Stop sending: purge what librdkafka still holds (it stays in the outbox)."""
        if self._closed:
            return
        self._closed = True  # before the purge: its reports must not look like an outage
        self._producer.purge(in_queue=True, in_flight=True)
        self._producer.poll(0)
        self._update_gauges()
