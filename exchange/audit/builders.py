"""Entries from what producers and consumers already hold: a verified header, a position.

These helpers copy only identifiers and digests out of a
:class:`~exchange.crypto.VerifiedEnvelope`; they never see plaintext, so neither can the log.
"""

from __future__ import annotations

import uuid
from datetime import datetime

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
from exchange.crypto import VerifiedEnvelope

__all__ = [
    "delivery_entry",
    "key_change_entry",
    "publish_entry",
    "quarantine_entry",
    "receipt_entry",
]


def _from_envelope(
    kind: EntryKind,
    verified: VerifiedEnvelope,
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
        header_digest=header_digest,
        commitment=h.commitment,
        position=position,
        handling=h.handling,
        sender=h.sender,
        recipients=tuple(sorted(h.recipients, key=lambda r: r.agency_id)),
    )


def publish_entry(
    verified: VerifiedEnvelope,
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
    verified: VerifiedEnvelope,
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
    verified: VerifiedEnvelope | None = None,
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
