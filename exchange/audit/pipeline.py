"""What producers and consumers log: entries per delivery report, per settled message.

:class:`ProducerAuditQueue` collects ``publish`` entries in the producer's delivery callbacks
and appends them with one fsync when the producer next returns from ``poll``/``flush``.
:class:`ConsumerAudit` collects ``delivery`` entries and signed receipts for one consumed
batch and writes them after the sink committed and before the offset commit; quarantine
entries are written right after each quarantine record. Nothing here sees plaintext: the
entries are built from the signed header and digests only (:mod:`exchange.audit.builders`).

Every failure propagates (fail closed): a pipeline that cannot log stops.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from exchange.audit.agency import AgencyAudit
from exchange.audit.builders import (
    EnvelopeFacts,
    delivery_entry,
    publish_entry,
    quarantine_entry,
)
from exchange.audit.entry import AuditEntry, AuditReason, KafkaPosition
from exchange.audit.note import AgencyNoteSigner
from exchange.audit.receipt import Receipt, ReceiptOutcome, sign_receipt
from exchange.crypto import VerifiedEnvelope
from exchange.crypto.keys import KeyProvider

__all__ = ["ConsumerAudit", "ProducerAuditQueue", "ReceiptTransport"]


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

    def finish_batch(self) -> None:
        """Append the batch's entries (one fsync), then sign and send its receipts.

        Raises:
            AuditStorageError: the log could not be written.
            BrokerError: a receipt was not acknowledged.
        """
        entries, due = self._entries, self._due
        self._entries, self._due = [], []
        if entries:
            self._audit.record(entries)
        if not due:
            return
        now = self._clock()
        signer = AgencyNoteSigner(self._recipient, at=now)
        for d in due:
            h = d.verified.header
            receipt = Receipt(
                message_id=h.message_id, signing_digest=d.verified.signing_digest,
                sender=h.sender.agency_id, recipient=self.agency_id, position=d.position,
                time=now, outcome=d.outcome, reason=d.reason,
            )  # fmt: skip
            self._receipts.send(h.sender.agency_id, h.message_id, sign_receipt(receipt, signer))
        self._receipts.flush()
