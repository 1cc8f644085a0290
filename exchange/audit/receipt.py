"""Signed delivery receipts: a recipient's signed statement of what it received and where.

A receipt is a signed note (docs/audit.md, "Receipts") whose text is exactly::

    exchange.bus/receipt/v1
    message 5b0c3a1e-8f0e-4c55-9a8e-0d5b1c2a3f4e
    digest <base64 of the envelope signing digest d>
    sender MEX-FGR
    recipient USA-ATF
    position usa-atf.inbound 0 42
    time 1764298197123456
    outcome stored

(``outcome refused`` is followed by a ``reason <code>`` line). It is signed by the recipient's
classic Ed25519 key, named ``exchange.bus/key/<recipient>/<key id>``. The sender keeps it and
logs a ``receipt`` entry with its SHA-256, so it can prove delivery across the border.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from exchange.audit.entry import AuditReason, KafkaPosition
from exchange.audit.errors import AuditFormatError
from exchange.audit.note import (
    ALG_ED25519,
    Note,
    NoteSigner,
    key_hash,
    parse_key_name,
    resolve_key,
    sign_note,
    verify_ed25519,
)
from exchange.crypto.keys import TrustResolver
from exchange.errors import IntegrityError, IntegrityReason
from exchange.identifiers import is_agency_id

__all__ = ["Receipt", "ReceiptOutcome", "receipt_digest", "sign_receipt", "verify_receipt"]

RECEIPT_HEADER: Final = "exchange.bus/receipt/v1"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NUM_RE: Final = re.compile(r"\A(?:0|[1-9][0-9]{0,18})\Z")


class ReceiptOutcome(StrEnum):
    """What the recipient's sink did with the record."""

    STORED = "stored"
    DUPLICATE = "duplicate"  #: already stored (a redelivery); nothing changed
    REFUSED = "refused"  #: quarantined; ``reason`` says why


@dataclass(frozen=True)
class Receipt:
    """What a receipt states. Validated on construction.

    Raises:
        ValueError: a field outside its syntax, or ``reason`` present exactly when the
            outcome is not ``refused``.
    """

    message_id: uuid.UUID
    signing_digest: bytes
    sender: str
    recipient: str
    position: KafkaPosition
    time: datetime
    outcome: ReceiptOutcome
    reason: AuditReason | None = None

    def __post_init__(self) -> None:
        if len(self.signing_digest) not in (32, 48):
            raise ValueError("signing_digest must be 32 or 48 bytes")
        if not (is_agency_id(self.sender) and is_agency_id(self.recipient)):
            raise ValueError("sender and recipient must be agency ids")
        if self.time.tzinfo is None or self.time < _EPOCH:
            raise ValueError("time must be an aware datetime after 1970")
        if (self.outcome is ReceiptOutcome.REFUSED) != (self.reason is not None):
            raise ValueError("a reason is given exactly when the outcome is refused")

    def text(self) -> str:
        """The note text (the signed bytes)."""
        p = self.position
        us = (self.time - _EPOCH) // timedelta(microseconds=1)
        lines = [
            RECEIPT_HEADER,
            f"message {self.message_id}",
            f"digest {base64.b64encode(self.signing_digest).decode()}",
            f"sender {self.sender}",
            f"recipient {self.recipient}",
            f"position {p.topic} {p.partition} {p.offset}",
            f"time {us}",
            f"outcome {self.outcome.value}",
        ]
        if self.reason is not None:
            lines.append(f"reason {self.reason.value}")
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> Receipt:
        """Parse a receipt text; only the canonical form is accepted.

        Raises:
            AuditFormatError: not a receipt of this format.
        """
        lines = text.split("\n")
        if lines[0] != RECEIPT_HEADER or lines[-1] != "" or len(lines) not in (9, 10):
            raise AuditFormatError("not an exchange receipt")
        fields = {}
        for line in lines[1:-1]:
            key, _, value = line.partition(" ")
            fields[key] = value
        try:
            topic, partition, offset = fields["position"].split(" ")
            us = fields["time"]
            numbers = [int(x) if _NUM_RE.match(x) else -1 for x in (partition, offset, us)]
            receipt = cls(
                message_id=uuid.UUID(fields["message"]),
                signing_digest=base64.b64decode(fields["digest"], validate=True),
                sender=fields["sender"],
                recipient=fields["recipient"],
                position=KafkaPosition(topic, numbers[0], numbers[1]),
                time=_EPOCH + timedelta(microseconds=numbers[2]),
                outcome=ReceiptOutcome(fields["outcome"]),
                reason=AuditReason(fields["reason"]) if "reason" in fields else None,
            )
        except (KeyError, ValueError, binascii.Error) as exc:
            raise AuditFormatError(f"malformed receipt ({type(exc).__name__})") from None
        if receipt.text() != text:
            raise AuditFormatError("receipt is not canonical")
        return receipt


def sign_receipt(receipt: Receipt, signer: NoteSigner) -> bytes:
    """Sign ``receipt`` with the recipient's key.

    Returns:
        The signed receipt note.

    Raises:
        ValueError: ``signer`` is not a key of ``receipt.recipient``.
    """
    parsed = parse_key_name(signer.name)
    if parsed is None or parsed[0] != receipt.recipient:
        raise ValueError(f"got signer {signer.name}, expected a key of {receipt.recipient}")
    return sign_note(receipt.text(), signer).encode()


def receipt_digest(data: bytes) -> bytes:
    """SHA-256 of a signed receipt note (logged in ``receipt`` entries)."""
    return hashlib.sha256(data).digest()


def verify_receipt(
    data: bytes,
    *,
    trust: TrustResolver,
    message_id: uuid.UUID,
    signing_digest: bytes,
    sender: str,
) -> Receipt:
    """Verify a receipt for one message we sent.

    Args:
        data: the signed receipt note (untrusted).
        trust: the trust store (the recipient's key must be valid at the receipt time).
        message_id: the message the receipt must be for.
        signing_digest: that message's signing digest.
        sender: our agency id (the receipt must be addressed to us).

    Returns:
        The verified receipt.

    Raises:
        IntegrityError: ``MALFORMED`` (format), ``BAD_SIGNATURE`` (no valid signature by the
            named recipient) or ``BINDING_MISMATCH`` (another message, digest or sender).
    """
    try:
        note = Note.parse(data)
        receipt = Receipt.parse(note.text)
    except AuditFormatError:
        raise IntegrityError(IntegrityReason.MALFORMED) from None
    message = note.text.encode()
    ok = False
    for sig in note.signatures:
        resolved = resolve_key(sig.name, trust, at=receipt.time)
        if resolved is None or resolved[0] != receipt.recipient:
            continue
        if hmac.compare_digest(sig.key_hash, key_hash(sig.name, resolved[1], ALG_ED25519)):
            ok = ok or verify_ed25519(resolved[1], sig.signature, message)
    if not ok:
        raise IntegrityError(IntegrityReason.BAD_SIGNATURE)
    same = hmac.compare_digest(receipt.signing_digest, signing_digest)
    if not same or receipt.message_id != message_id or receipt.sender != sender:
        raise IntegrityError(IntegrityReason.BINDING_MISMATCH)
    return receipt
