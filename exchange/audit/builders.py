"""Entries from what producers and consumers already hold: a verified header, a position.

These helpers copy only identifiers and digests out of a
:class:`~exchange.crypto.VerifiedEnvelope` (consumers) or a flushed
:class:`~exchange.crypto.PendingEnvelope` (producers: what the sealer knows of its own
envelope); they never see plaintext, so neither can the log.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from exchange.audit.entry import (
    AuditEntry,
    AuditReason,
    EntryKind,
    KafkaPosition,
    KeyAction,
    KeyEvent,
    Outcome,
)
from exchange.audit.receipt import Receipt, receipt_digest
from exchange.crypto import EnvelopeHeader

__all__ = [
    "EnvelopeFacts",
    "delivery_entry",
    "key_change_entry",
    "publish_entry",
    "quarantine_entry",
    "receipt_entry",
]


class EnvelopeFacts(Protocol):
    """What an entry copies from an envelope: its signed header and digests.

    Both :class:`~exchange.crypto.VerifiedEnvelope` and a flushed
    :class:`~exchange.crypto.PendingEnvelope` provide it.
    """

    @property
    def header(self) -> EnvelopeHeader: ...

    @property
    def signing_digest(self) -> bytes: ...

    @property
    def header_digest(self) -> bytes: ...


def _from_envelope(
    kind: EntryKind,
    verified: EnvelopeFacts,
    *,
    log_agency: str,
    position: KafkaPosition | None,
    time: datetime,
    outcome: Outcome,
    reason: AuditReason | None,
    record_id: uuid.UUID | None,
    header_digest: bytes | None,
) -> AuditEntry:
    h = verified.header
    return AuditEntry(
        kind=kind,
        time=time,
        log_agency=log_agency,
        outcome=outcome,
        reason=reason,
        message_id=h.message_id,
        record_id=record_id,
        record_type=h.record_type,
        signing_digest=verified.signing_digest,
        header_digest=verified.header_digest if header_digest is None else header_digest,
        commitment=h.commitment,
        position=position,
        handling=h.handling,
        sender=h.sender,
        recipients=tuple(sorted(h.recipients, key=lambda r: r.agency_id)),
    )


def publish_entry(
    verified: EnvelopeFacts,
    *,
    log_agency: str,
    position: KafkaPosition | None,
    time: datetime,
    failure: AuditReason | None = None,
    record_id: uuid.UUID | None = None,
    header_digest: bytes | None = None,
) -> AuditEntry:
    """The producer's entry after a delivery report: ``ok`` with the position, or ``failed``.

    Raises:
        ValueError: a field is outside its syntax (see :class:`AuditEntry`).
    """
    outcome = Outcome.OK if failure is None else Outcome.FAILED
    return _from_envelope(
        EntryKind.PUBLISH,
        verified,
        log_agency=log_agency,
        position=position,
        time=time,
        outcome=outcome,
        reason=failure,
        record_id=record_id,
        header_digest=header_digest,
    )


def delivery_entry(
    verified: EnvelopeFacts,
    *,
    log_agency: str,
    position: KafkaPosition,
    time: datetime,
    duplicate: bool = False,
    record_id: uuid.UUID | None = None,
    header_digest: bytes | None = None,
) -> AuditEntry:
    """The consumer's entry once the record is in its sink (or was already there).

    ``duplicate`` entries carry the ``replay`` reason code.

    Raises:
        ValueError: a field is outside its syntax.
    """
    outcome, reason = (Outcome.DUPLICATE, AuditReason.REPLAY) if duplicate else (Outcome.OK, None)
    return _from_envelope(
        EntryKind.DELIVERY,
        verified,
        log_agency=log_agency,
        position=position,
        time=time,
        outcome=outcome,
        reason=reason,
        record_id=record_id,
        header_digest=header_digest,
    )


def quarantine_entry(
    *,
    log_agency: str,
    position: KafkaPosition,
    reason: AuditReason,
    time: datetime,
    verified: EnvelopeFacts | None = None,
) -> AuditEntry:
    """The consumer's entry for a refused message; ids and digests only if it verified.

    Raises:
        ValueError: a field is outside its syntax.
    """
    if verified is None:
        return AuditEntry(
            kind=EntryKind.QUARANTINE,
            time=time,
            log_agency=log_agency,
            outcome=Outcome.QUARANTINED,
            reason=reason,
            position=position,
        )
    return _from_envelope(
        EntryKind.QUARANTINE,
        verified,
        log_agency=log_agency,
        position=position,
        time=time,
        outcome=Outcome.QUARANTINED,
        reason=reason,
        record_id=None,
        header_digest=None,
    )


def receipt_entry(
    receipt: Receipt, signed: bytes, *, log_agency: str, time: datetime
) -> AuditEntry:
    """An entry for a signed receipt (the sender logs each verified receipt it receives).

    Raises:
        ValueError: a field is outside its syntax.
    """
    return AuditEntry(
        kind=EntryKind.RECEIPT,
        time=time,
        log_agency=log_agency,
        message_id=receipt.message_id,
        signing_digest=receipt.signing_digest,
        position=receipt.position,
        receipt_digest=receipt_digest(signed),
    )


def key_change_entry(
    *,
    log_agency: str,
    action: KeyAction,
    agency_id: str,
    key_id: str | None,
    fingerprint: bytes,
    time: datetime,
) -> AuditEntry:
    """An entry for a key enrolment, rotation or revocation, or a trust store change.

    Raises:
        ValueError: a field is outside its syntax.
    """
    trust = action in (KeyAction.ROOT_ADDED, KeyAction.ROOT_REMOVED, KeyAction.CRL_UPDATED)
    return AuditEntry(
        kind=EntryKind.TRUST_CHANGE if trust else EntryKind.KEY_CHANGE,
        time=time,
        log_agency=log_agency,
        key_event=KeyEvent(action, agency_id, key_id, fingerprint),
    )
