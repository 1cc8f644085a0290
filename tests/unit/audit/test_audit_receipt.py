"""Signed delivery receipts: format, signature, binding to one message and one sender."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import uuid
from datetime import timedelta

import pytest

from exchange.audit import (
    AgencyNoteSigner,
    AuditFormatError,
    AuditReason,
    EntryKind,
    KafkaPosition,
    Receipt,
    ReceiptOutcome,
    decode_entry,
    encode_entry,
    receipt_digest,
    receipt_entry,
    sign_receipt,
    verify_receipt,
)
from exchange.audit.note import sign_note
from exchange.errors import IntegrityError, IntegrityReason
from tests.unit.audit.audit_world import NOW, AuditWorld

MESSAGE = uuid.UUID("5b0c3a1e-8f0e-4c55-9a8e-0d5b1c2a3f4e")
DIGEST = hashlib.sha256(b"signing digest").digest()


def _receipt(**changes: object) -> Receipt:
    r = Receipt(
        message_id=MESSAGE, signing_digest=DIGEST, sender="MEX-FGR", recipient="USA-ATF",
        position=KafkaPosition("mex-fgr.usa.seizure", 0, 42), time=NOW,
        outcome=ReceiptOutcome.STORED,
    )  # fmt: skip
    return dataclasses.replace(r, **changes)  # type: ignore[arg-type]  # test-only overrides


def _verify(world: AuditWorld, data: bytes, **changes: object) -> Receipt:
    args: dict[str, object] = {"message_id": MESSAGE, "signing_digest": DIGEST, "sender": "MEX-FGR"}
    args.update(changes)
    return verify_receipt(data, trust=world.trust, **args)  # type: ignore[arg-type]


def _reason(world: AuditWorld, data: bytes, **changes: object) -> IntegrityReason:
    with pytest.raises(IntegrityError) as info:
        _verify(world, data, **changes)
    return info.value.reason


def test_receipt_text_is_the_documented_format() -> None:
    text = _receipt().text()
    assert text == (
        "exchange.bus/receipt/v1\n"
        "message 5b0c3a1e-8f0e-4c55-9a8e-0d5b1c2a3f4e\n"
        f"digest {base64.b64encode(DIGEST).decode()}\n"
        "sender MEX-FGR\nrecipient USA-ATF\nposition mex-fgr.usa.seizure 0 42\n"
        f"time {int(NOW.timestamp()) * 1_000_000}\noutcome stored\n"
    )
    assert Receipt.parse(text) == _receipt()
    refused = _receipt(outcome=ReceiptOutcome.REFUSED, reason=AuditReason.SCHEMA_MISMATCH)
    assert refused.text().endswith("outcome refused\nreason schema_mismatch\n")
    assert Receipt.parse(refused.text()) == refused


def test_signed_receipt_verifies_and_is_logged_by_its_digest(world: AuditWorld) -> None:
    data = sign_receipt(_receipt(), AgencyNoteSigner(world.atf, at=NOW))
    assert _verify(world, data) == _receipt()
    entry = receipt_entry(_receipt(), data, log_agency="MEX-FGR", time=NOW)
    assert entry.kind is EntryKind.RECEIPT
    assert entry.receipt_digest == receipt_digest(data) == hashlib.sha256(data).digest()
    assert decode_entry(encode_entry(entry)) == entry


def test_receipt_with_a_bad_signature(world: AuditWorld) -> None:
    data = bytearray(sign_receipt(_receipt(), AgencyNoteSigner(world.atf, at=NOW)))
    sig_start = data.rindex(b" ") + 1
    line = base64.b64decode(bytes(data[sig_start:-1]))
    flipped = line[:10] + bytes([line[10] ^ 1]) + line[11:]
    data[sig_start:-1] = base64.b64encode(flipped)
    assert _reason(world, bytes(data)) is IntegrityReason.BAD_SIGNATURE


def test_receipt_with_altered_text(world: AuditWorld) -> None:
    data = sign_receipt(_receipt(), AgencyNoteSigner(world.atf, at=NOW))
    altered = data.replace(b"outcome stored", b"outcome duplicate")
    assert _reason(world, altered) is IntegrityReason.BAD_SIGNATURE


def test_receipt_for_another_message(world: AuditWorld) -> None:
    data = sign_receipt(_receipt(), AgencyNoteSigner(world.atf, at=NOW))
    assert _reason(world, data, message_id=uuid.uuid4()) is IntegrityReason.BINDING_MISMATCH
    other_digest = hashlib.sha256(b"other").digest()
    assert _reason(world, data, signing_digest=other_digest) is IntegrityReason.BINDING_MISMATCH
    assert _reason(world, data, sender="MEX-SSPC") is IntegrityReason.BINDING_MISMATCH


def test_receipt_signed_by_someone_other_than_the_recipient(world: AuditWorld) -> None:
    with pytest.raises(ValueError, match="expected a key of USA-ATF"):
        sign_receipt(_receipt(), AgencyNoteSigner(world.cbp, at=NOW))
    forged = sign_note(_receipt().text(), AgencyNoteSigner(world.cbp, at=NOW)).encode()
    assert _reason(world, forged) is IntegrityReason.BAD_SIGNATURE


def test_receipt_signed_after_the_recipient_key_was_revoked(world: AuditWorld) -> None:
    data = sign_receipt(_receipt(), AgencyNoteSigner(world.atf, at=NOW))
    world.trust.revoke("USA-ATF", "classic-1", at=NOW - timedelta(days=1))
    assert _reason(world, data) is IntegrityReason.BAD_SIGNATURE


@pytest.mark.parametrize(
    "text",
    [
        "exchange.bus/receipt/v2\n",
        _receipt().text().replace("outcome stored", "outcome lost"),
        _receipt().text().replace(" 42\n", " 042\n"),
        _receipt().text().replace("sender MEX-FGR", "sender Juan Perez"),
        _receipt().text() + "reason replay\n",
        _receipt().text().replace("message 5b0c", "message 5B0C"),
    ],
)
def test_malformed_receipts_are_refused(world: AuditWorld, text: str) -> None:
    with pytest.raises(AuditFormatError):
        Receipt.parse(text)
    data = sign_note(text, AgencyNoteSigner(world.atf, at=NOW)).encode()
    assert _reason(world, data) is IntegrityReason.MALFORMED


def test_refused_outcome_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="reason"):
        _receipt(outcome=ReceiptOutcome.REFUSED)
    with pytest.raises(ValueError, match="reason"):
        _receipt(reason=AuditReason.REPLAY)
