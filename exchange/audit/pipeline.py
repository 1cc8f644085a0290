"""What producers and consumers log: entries per delivery report, per settled message.

:class:`ProducerAuditQueue` collects ``publish`` entries in the producer's delivery callbacks
and appends them with one fsync when the producer next returns from ``poll``/``flush``.
:class:`ConsumerAudit` collects ``delivery`` entries and signed receipts for one consumed
batch and writes them after the sink committed and before the offset commit; quarantine
entries are written right after each quarantine record. Nothing here sees plaintext: the
entries are built from the signed header and digests only (:mod:`exchange.audit.builders`).

Every failure propagates (fail closed): a pipeline that cannot log stops.

**After a crash.** A consumer killed between its sink commit and the ``delivery`` append, or
between that append and the receipts' acknowledgement, leaves stored records without entries
or logged deliveries without receipts, and the sink never redelivers them (it resumes from
its own offsets). :meth:`ConsumerAudit.recover` repairs that when the consumer starts: it
reads the *receipt mark* (``<log>/consumer-mark.json``: the log size whose receipts were all
acknowledged, and per consumer group and partition the next offset the log accounts for),
re-reads from Kafka only what the sink stored past those offsets, appends the missing
``delivery`` entries, and (re)sends the receipts of every entry after the mark. A crash during
the recovery is repaired by the next one: the entries it appended are in the log's tail, so
they are not appended twice; receipts may be sent twice (the sender logs each valid receipt
once per distinct note; the auditor needs one).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol

from exchange.audit.agency import AgencyAudit
from exchange.audit.builders import (
    EnvelopeFacts,
    delivery_entry,
    publish_entry,
    quarantine_entry,
)
from exchange.audit.codec import decode_entry
from exchange.audit.entry import AuditEntry, AuditReason, EntryKind, KafkaPosition, Outcome
from exchange.audit.errors import AuditStorageError
from exchange.audit.note import AgencyNoteSigner
from exchange.audit.receipt import Receipt, ReceiptOutcome, sign_receipt
from exchange.crypto import VerifiedEnvelope
from exchange.crypto.keys import KeyProvider

__all__ = [
    "ConsumerAudit",
    "ConsumerMark",
    "ProducerAuditQueue",
    "ReceiptTransport",
    "Recovery",
    "Reread",
]

logger = logging.getLogger(__name__)

#: The receipt mark of a consumer's log (see the module docstring).
MARK_FILE: Final = "consumer-mark.json"

#: (topic, partition)
Partition = tuple[str, int]


def _uuid(value: str | bytes | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value.decode() if isinstance(value, bytes) else value)
    except ValueError:
        return None


class ProducerAuditQueue:
    """Publish entries queued by delivery callbacks, appended in batches."""

    def __init__(self, audit: AgencyAudit) -> None:
        self._audit = audit
        self._queue: list[AuditEntry] = []
        self._lock = threading.Lock()

    def delivered(
        self,
        pending: EnvelopeFacts,
        *,
        position: KafkaPosition | None,
        record_id: bytes | None,
        failed: bool,
    ) -> None:
        """Queue the entry of one delivery report (``failed``: the broker refused it)."""
        entry = publish_entry(
            pending, log_agency=self._audit.agency_id, position=None if failed else position,
            time=self._audit.now(), failure=AuditReason.BROKER_ERROR if failed else None,
            record_id=_uuid(record_id),
        )  # fmt: skip
        with self._lock:
            self._queue.append(entry)

    def drain(self, *, checkpoint: bool = False) -> None:
        """Append the queued entries (one fsync); checkpoint if asked or due.

        The checkpoint is signed into the local log; its publication to the audit topic
        happens on the log's own thread and never fails this call (docs/audit.md).

        Raises:
            AuditStorageError: the log could not be written: stop publishing.
        """
        with self._lock:
            batch, self._queue = self._queue, []
        if batch:
            self._audit.record(batch)
        if checkpoint:
            self._audit.checkpoint()


class ReceiptTransport(Protocol):
    """How receipts travel (``exchange.audit_bus.ReceiptSender`` on Kafka)."""

    def send(self, sender: str, message_id: uuid.UUID, receipt: bytes) -> None: ...

    def flush(self) -> None: ...


@dataclass
class ConsumerMark:
    """How far a consumer's log is settled: every entry before ``index`` has its receipt
    acknowledged, and per group the next offset of each partition the log accounts for
    (every message before it was logged, quarantined, or not addressed to us)."""

    index: int = 0
    positions: dict[str, dict[Partition, int]] = field(default_factory=dict)

    @classmethod
    def read(cls, directory: Path) -> ConsumerMark:
        """The mark in ``directory``; an empty one if there is none or it is unreadable (the
        recovery then covers the whole log: slower, never wrong)."""
        path = directory / MARK_FILE
        try:
            data = json.loads(path.read_bytes())
            groups = {
                group: {(t, int(p)): int(o) for t, p, o in rows}
                for group, rows in data["positions"].items()
            }
            return cls(int(data["index"]), groups)
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring the unreadable receipt mark %s: %s", path, exc)
            return cls()

    def write(self, directory: Path) -> None:
        """Replace the mark (not fsync'd: a mark older than the log only makes the next
        recovery resend more receipts).

        Raises:
            AuditStorageError: the disk failed.
        """
        data = {
            "index": self.index,
            "positions": {
                g: sorted([t, p, o] for (t, p), o in rows.items())
                for g, rows in self.positions.items()
            },
        }
        path = directory / MARK_FILE
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_bytes(json.dumps(data, separators=(",", ":")).encode())
            os.replace(tmp, path)
        except OSError as exc:
            raise AuditStorageError(f"cannot write {path}: {exc.strerror}") from exc

    def advance(self, group: str, positions: Mapping[Partition, int]) -> None:
        mine = self.positions.setdefault(group, {})
        for tp, offset in positions.items():
            mine[tp] = max(mine.get(tp, 0), offset)


#: Re-reads ``[start, end)`` of a partition: each addressed, verified message there as
#: (position, envelope, record id); the others are left out.
Reread = Callable[[Partition, int, int], Iterable[tuple[KafkaPosition, VerifiedEnvelope, str]]]


@dataclass(frozen=True)
class Recovery:
    """What :meth:`ConsumerAudit.recover` repaired."""

    entries_recovered: int
    receipts_resent: int
    partitions_reread: int


@dataclass(frozen=True)
class _Due:
    verified: VerifiedEnvelope
    position: KafkaPosition
    outcome: ReceiptOutcome
    reason: AuditReason | None


class ConsumerAudit:
    """A consumer's audit: delivery and quarantine entries, and receipts to the senders.

    Args:
        audit: the consuming agency's log.
        recipient: its key provider (receipts are signed with its classic note key).
        receipts: where receipts go.
        clock: injectable clock for receipt times.
    """

    def __init__(
        self,
        audit: AgencyAudit,
        recipient: KeyProvider,
        receipts: ReceiptTransport,
        clock: Callable[[], datetime],
    ) -> None:
        self._audit = audit
        self._recipient = recipient
        self._receipts = receipts
        self._clock = clock
        self._entries: list[AuditEntry] = []
        self._due: list[_Due] = []
        self._mark: ConsumerMark | None = None

    @property
    def agency_id(self) -> str:
        return self._audit.agency_id

    def quarantined(
        self, position: KafkaPosition, reason: str, verified: VerifiedEnvelope | None
    ) -> None:
        """Log a quarantined message now (after its quarantine record was acknowledged);
        an addressed, verified one also gets a ``refused`` receipt with the batch.

        Raises:
            AuditStorageError: the log could not be written.
        """
        code = AuditReason(reason)
        entry = quarantine_entry(
            log_agency=self.agency_id, position=position, reason=code,
            time=self._audit.now(), verified=verified,
        )  # fmt: skip
        self._audit.record([entry])
        if verified is not None and verified.header.recipient_key(self.agency_id) is not None:
            self._due.append(_Due(verified, position, ReceiptOutcome.REFUSED, code))

    def delivered(
        self,
        position: KafkaPosition,
        verified: VerifiedEnvelope,
        *,
        record_id: str,
        duplicate: bool,
    ) -> None:
        """Queue the entry and receipt of a stored (or benignly redelivered) record."""
        self._entries.append(
            delivery_entry(
                verified,
                log_agency=self.agency_id,
                position=position,
                time=self._audit.now(),
                duplicate=duplicate,
                record_id=_uuid(record_id),
            )
        )
        outcome = ReceiptOutcome.DUPLICATE if duplicate else ReceiptOutcome.STORED
        self._due.append(_Due(verified, position, outcome, None))

    def finish_batch(
        self, group: str | None = None, positions: Mapping[Partition, int] | None = None
    ) -> None:
        """Append the batch's entries (one fsync), then sign and send its receipts; once
        they are acknowledged, advance the receipt mark (``positions``: the next offset
        per partition the batch accounted for, in consumer group ``group``).

        Raises:
            AuditStorageError: the log could not be written.
            BrokerError: a receipt was not acknowledged.
        """
        entries, due = self._entries, self._due
        self._entries, self._due = [], []
        if entries:
            self._audit.record(entries)
        if due:
            now = self._clock()
            signer = AgencyNoteSigner(self._recipient, at=now)
            for d in due:
                h = d.verified.header
                self._send(
                    Receipt(
                        message_id=h.message_id, signing_digest=d.verified.signing_digest,
                        sender=h.sender.agency_id, recipient=self.agency_id,
                        position=d.position, time=now, outcome=d.outcome, reason=d.reason,
                    ),
                    signer,
                )  # fmt: skip
            self._receipts.flush()
        if group is not None and positions and self._mark is not None:
            self._mark.index = self._audit.log.size
            self._mark.advance(group, positions)
            self._mark.write(self._audit.log.directory)

    def _send(self, receipt: Receipt, signer: AgencyNoteSigner) -> None:
        self._receipts.send(receipt.sender, receipt.message_id, sign_receipt(receipt, signer))

    def recover(
        self,
        group: str,
        stored: Mapping[Partition, int],
        stored_at: Callable[[str], KafkaPosition | None],
        reread: Reread,
    ) -> Recovery:
        """Repair what a crash left (module docstring); run before the first batch.

        Args:
            group: the consumer group whose sink offsets ``stored`` are.
            stored: the sink's next offset per partition for ``group``.
            stored_at: where the sink stored a message id (None: not stored).
            reread: reads back a partition range from Kafka, verified.

        Raises:
            AuditStorageError: the log could not be read or written.
            BrokerError: Kafka could not be read, or a receipt was not acknowledged.
        """
        mark = ConsumerMark.read(self._audit.log.directory)
        log = self._audit.log
        start = min(mark.index, log.size)
        tail = [decode_entry(log.entry_bytes(i)) for i in range(start, log.size)]
        logged: set[KafkaPosition] = set()
        audited = dict(mark.positions.get(group, {}))
        for e in tail:
            if e.log_agency != self.agency_id or e.position is None:
                continue
            if e.kind in (EntryKind.DELIVERY, EntryKind.QUARANTINE):
                logged.add(e.position)
                tp = (e.position.topic, e.position.partition)
                audited[tp] = max(audited.get(tp, 0), e.position.offset + 1)
        recovered: list[AuditEntry] = []
        reread_count = 0
        for tp, end in sorted(stored.items()):
            begin = audited.get(tp, 0)
            if end <= begin:
                continue
            reread_count += 1
            for position, verified, record_id in reread(tp, begin, end):
                if position in logged or stored_at(str(verified.message_id)) != position:
                    continue  # logged already, or not the stored copy (a logged quarantine)
                recovered.append(
                    delivery_entry(
                        verified, log_agency=self.agency_id, position=position,
                        time=self._audit.now(), record_id=_uuid(record_id),
                    )
                )  # fmt: skip
                logged.add(position)
        if recovered:
            self._audit.record(recovered)
        resent = self._resend([*tail, *recovered])
        mark.index = log.size
        mark.advance(group, {**audited, **stored})
        mark.write(log.directory)
        self._mark = mark
        if recovered or resent:
            logger.warning(
                "%s: recovered after a crash: %d stored record(s) had no delivery entry "
                "(appended now), %d receipt(s) sent again (%d partition(s) re-read)",
                self.agency_id, len(recovered), resent, reread_count,
            )  # fmt: skip
        return Recovery(len(recovered), resent, reread_count)

    def _resend(self, entries: Iterable[AuditEntry]) -> int:
        """Sign and send the receipt of every entry that gets one; return how many."""
        now = self._clock()
        signer = AgencyNoteSigner(self._recipient, at=now)
        sent = 0
        for e in entries:
            receipt = self._receipt_of(e, now)
            if receipt is not None:
                self._send(receipt, signer)
                sent += 1
        if sent:
            self._receipts.flush()
        return sent

    def _receipt_of(self, e: AuditEntry, now: datetime) -> Receipt | None:
        if (
            e.log_agency != self.agency_id
            or e.message_id is None or e.signing_digest is None
            or e.sender is None or e.position is None
        ):  # fmt: skip
            return None
        if e.kind is EntryKind.DELIVERY:
            duplicate = e.outcome is Outcome.DUPLICATE
            outcome = ReceiptOutcome.DUPLICATE if duplicate else ReceiptOutcome.STORED
            reason = None
        elif e.kind is EntryKind.QUARANTINE and any(
            r.agency_id == self.agency_id for r in e.recipients
        ):
            outcome, reason = ReceiptOutcome.REFUSED, e.reason
        else:
            return None
        return Receipt(
            message_id=e.message_id, signing_digest=e.signing_digest,
            sender=e.sender.agency_id, recipient=self.agency_id, position=e.position,
            time=now, outcome=outcome, reason=reason,
        )  # fmt: skip
