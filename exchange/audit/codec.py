"""The canonical wire form of an audit entry: ``"XA" || 0x01 || Avro(AuditEntry)``.

The Avro schema ``schemas/avro/audit/v1.avsc`` is the source of truth (docs/audit.md,
"Entry encoding"). Each entry has exactly one valid byte string: a reader checks the bound,
the magic and the version before decoding, rejects trailing bytes, validates every field
(:class:`~exchange.audit.entry.AuditEntry`) and then re-encodes the result and requires the
same bytes, which rejects non-minimal varints, multi-block arrays and unsorted sets.

fastavro is safe here because the input is at most :data:`MAX_ENTRY_BYTES` and every array
item of this schema takes at least one byte, so a hostile count cannot make it loop or
allocate beyond the input size.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Final

import fastavro

from exchange.audit.entry import (
    AuditEntry,
    AuditReason,
    EntryKind,
    KafkaPosition,
    KeyAction,
    KeyEvent,
    Outcome,
)
from exchange.audit.errors import AuditFormatError
from exchange.crypto import KeyRef
from exchange.policy import HandlingSummary
from exchange.records import schema_root

__all__ = ["ENTRY_MAGIC", "MAX_ENTRY_BYTES", "decode_entry", "encode_entry"]

#: ``"XA"`` (exchange audit) then the format version.
ENTRY_MAGIC: Final = b"XA\x01"
#: Bound on one encoded entry, checked before decoding (64 recipients fit comfortably).
MAX_ENTRY_BYTES: Final = 16 * 1024
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@cache
def _schema() -> Any:
    with (schema_root() / "audit" / "v1.avsc").open(encoding="utf-8") as f:
        return fastavro.parse_schema(json.load(f))


def _micros(t: datetime) -> int:
    delta = t - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _ref(r: KeyRef) -> dict[str, str]:
    return {"agencyId": r.agency_id, "keyId": r.key_id}


def _to_avro(e: AuditEntry) -> dict[str, Any]:
    h = e.handling
    ev = e.key_event
    return {
        "kind": e.kind.value,
        "time": _micros(e.time),
        "logAgency": e.log_agency,
        "outcome": e.outcome.value,
        "reason": None if e.reason is None else e.reason.value,
        "messageId": None if e.message_id is None else str(e.message_id),
        "recordId": None if e.record_id is None else str(e.record_id),
        "recordType": e.record_type,
        "signingDigest": e.signing_digest,
        "headerDigest": e.header_digest,
        "commitment": e.commitment,
        "position": None
        if e.position is None
        else {"topic": e.position.topic, "partition": e.position.partition,
              "offset": e.position.offset},
        "handling": None
        if h is None
        else {"tlp": h.tlp, "releasableTo": list(h.releasable_to),
              "releasableToAgencies": None if h.releasable_to_agencies is None
              else list(h.releasable_to_agencies),
              "caveats": list(h.caveats), "originator": h.originator},
        "sender": None if e.sender is None else _ref(e.sender),
        "recipients": [_ref(r) for r in e.recipients],
        "keyEvent": None
        if ev is None
        else {"action": ev.action.value, "agencyId": ev.agency_id, "keyId": ev.key_id,
              "fingerprint": ev.fingerprint},
        "receiptDigest": e.receipt_digest,
    }  # fmt: skip


def _from_avro(d: dict[str, Any]) -> AuditEntry:
    h, ev, pos = d["handling"], d["keyEvent"], d["position"]
    when = d["time"]  # fastavro applies the timestamp-micros logical type on read
    return AuditEntry(
        kind=EntryKind(d["kind"]),
        time=when if isinstance(when, datetime) else _EPOCH + timedelta(microseconds=when),
        log_agency=d["logAgency"],
        outcome=Outcome(d["outcome"]),
        reason=None if d["reason"] is None else AuditReason(d["reason"]),
        message_id=_uuid(d["messageId"]),
        record_id=_uuid(d["recordId"]),
        record_type=d["recordType"],
        signing_digest=d["signingDigest"],
        header_digest=d["headerDigest"],
        commitment=d["commitment"],
        position=None if pos is None else KafkaPosition(pos["topic"], pos["partition"],
                                                        pos["offset"]),
        handling=None if h is None else HandlingSummary(
            tlp=h["tlp"], releasable_to=tuple(h["releasableTo"]), originator=h["originator"],
            releasable_to_agencies=None if h["releasableToAgencies"] is None
            else tuple(h["releasableToAgencies"]),
            caveats=tuple(h["caveats"])),
        sender=None if d["sender"] is None else KeyRef(d["sender"]["agencyId"],
                                                       d["sender"]["keyId"]),
        recipients=tuple(KeyRef(r["agencyId"], r["keyId"]) for r in d["recipients"]),
        key_event=None if ev is None else KeyEvent(KeyAction(ev["action"]), ev["agencyId"],
                                                   ev["keyId"], ev["fingerprint"]),
        receipt_digest=d["receiptDigest"],
    )  # fmt: skip


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None:
        return None
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def encode_entry(entry: AuditEntry) -> bytes:
    """The canonical bytes of ``entry`` (the Merkle leaf data ``d``).

    Args:
        entry: a validated entry.

    Returns:
        ``"XA" 0x01 || Avro(AuditEntry)``.

    Raises:
        ValueError: the encoding exceeds :data:`MAX_ENTRY_BYTES`.
    """
    buf = io.BytesIO()
    buf.write(ENTRY_MAGIC)
    fastavro.schemaless_writer(buf, _schema(), _to_avro(entry))
    data = buf.getvalue()
    if len(data) > MAX_ENTRY_BYTES:
        raise ValueError(f"got a {len(data)}-byte entry, expected <= {MAX_ENTRY_BYTES}")
    return data


def decode_entry(data: bytes) -> AuditEntry:
    """Decode and validate one entry; only its canonical encoding is accepted.

    Args:
        data: bytes from a log, an export or the audit topic (untrusted).

    Returns:
        The entry.

    Raises:
        AuditFormatError: oversized, wrong magic or version, undecodable, trailing bytes,
            a field outside its syntax, or a non-canonical encoding.
    """
    if len(data) > MAX_ENTRY_BYTES:
        raise AuditFormatError(f"entry of {len(data)} bytes exceeds {MAX_ENTRY_BYTES}")
    if data[:2] != ENTRY_MAGIC[:2]:
        raise AuditFormatError("not an audit entry (bad magic)")
    if data[2:3] != ENTRY_MAGIC[2:]:
        raise AuditFormatError(f"unknown audit entry version {data[2:3].hex() or 'none'}")
    buf = io.BytesIO(data[3:])
    try:
        raw = fastavro.schemaless_reader(buf, _schema(), None)
        entry = _from_avro(raw)  # type: ignore[arg-type]  # the schema's root is a record
    except Exception as exc:  # noqa: BLE001 - fastavro and validation raise many types
        raise AuditFormatError(f"undecodable audit entry ({type(exc).__name__})") from None
    if buf.tell() != len(data) - 3:
        raise AuditFormatError("trailing bytes after the entry")
    if encode_entry(entry) != data:
        raise AuditFormatError("audit entry is not in canonical form")
    return entry
