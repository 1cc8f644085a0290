"""The sender side of receipts: verify the receipts recipients sent and log them.

A sender reads ``receipts.<itself>``, and for each receipt note

1. looks up the message it names among its own ``publish`` entries (unknown: refused);
2. verifies it (:func:`~exchange.audit.verify_receipt`: format, the recipient's signature
   with a key valid at the receipt time, bound to that message id, digest and sender);
3. checks the position is where its log says the envelope was published;
4. appends one ``receipt`` entry per new receipt (by receipt digest), all with one fsync.

Example::

    with AgencyAudit.open(directory, keys) as audit:
        tally = collect_receipts(audit, notes, trust=trust)
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from exchange.audit.agency import AgencyAudit
from exchange.audit.builders import receipt_entry
from exchange.audit.codec import decode_entry
from exchange.audit.entry import AuditEntry, EntryKind, Outcome
from exchange.audit.errors import AuditFormatError
from exchange.audit.note import Note
from exchange.audit.receipt import Receipt, receipt_digest, verify_receipt
from exchange.crypto.keys import TrustResolver
from exchange.errors import IntegrityError

__all__ = ["ReceiptTally", "collect_receipts"]

logger = logging.getLogger(__name__)


@dataclass
class ReceiptTally:
    """What one collection did."""

    logged: int = 0
    already_logged: int = 0
    refused: int = 0


def _own_entries(audit: AgencyAudit) -> list[AuditEntry]:
    log = audit.log
    return [decode_entry(log.entry_bytes(i)) for i in range(log.size)]


def collect_receipts(
    audit: AgencyAudit, notes: Iterable[bytes], *, trust: TrustResolver
) -> ReceiptTally:
    """Verify ``notes`` against ``audit``'s own publish entries and log the valid new ones.

    Raises:
        AuditStorageError: the log could not be written (fail closed).
    """
    me = audit.agency_id
    published: dict[Any, AuditEntry] = {}
    logged: set[bytes] = set()
    for entry in _own_entries(audit):
        if entry.kind is EntryKind.PUBLISH and entry.outcome is Outcome.OK:
            published[entry.message_id] = entry
        elif entry.kind is EntryKind.RECEIPT and entry.receipt_digest is not None:
            logged.add(entry.receipt_digest)
    tally = ReceiptTally()
    new: list[AuditEntry] = []
    for data in notes:
        digest = receipt_digest(data)
        if digest in logged:
            tally.already_logged += 1
            continue
        try:
            # Unverified parse, used only to find which message to verify against.
            claimed = Receipt.parse(Note.parse(data).text)
        except AuditFormatError:
            tally.refused += 1
            continue
        found = published.get(claimed.message_id)
        if found is None or found.signing_digest is None:
            logger.warning("receipt for a message %s never published", claimed.message_id)
            tally.refused += 1
            continue
        entry, expected = found, found.signing_digest
        try:
            receipt = verify_receipt(
                data, trust=trust, message_id=claimed.message_id,
                signing_digest=expected, sender=me,
            )  # fmt: skip
        except IntegrityError as exc:
            logger.warning("receipt for %s refused: %s", claimed.message_id, exc.reason.value)
            tally.refused += 1
            continue
        if receipt.position != entry.position:
            logger.warning("receipt for %s names another position", claimed.message_id)
            tally.refused += 1
            continue
        if not hmac.compare_digest(receipt.signing_digest, expected):
            tally.refused += 1  # pragma: no cover - verify_receipt compared them already
            continue
        new.append(receipt_entry(receipt, data, log_agency=me, time=audit.now()))
        logged.add(digest)
    if new:
        audit.record(new)
    tally.logged = len(new)
    return tally
