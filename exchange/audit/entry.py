"""Audit entries: what the log records about each event, and nothing more.

An :class:`AuditEntry` holds identifiers, digests, Kafka coordinates, the signed handling
summary, outcome and reason code of one event (docs/audit.md, "Entry"). It has **no free-text
field**: every string is an identifier of a fixed syntax (agency id, key id, UUID, topic,
record type) and every code is an enum, so record content or personal data cannot get in by
construction. Validation happens in ``__post_init__``; the wire form is in
:mod:`exchange.audit.codec`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from exchange.crypto import KeyRef
from exchange.identifiers import is_agency_id
from exchange.policy import HandlingSummary

__all__ = [
    "MAX_LIST_ITEMS",
    "AuditEntry",
    "AuditReason",
    "EntryKind",
    "KafkaPosition",
    "KeyAction",
    "KeyEvent",
    "Outcome",
]

#: Bound on every list in an entry (recipients, releasable-to, caveats), as in envelope v1.
MAX_LIST_ITEMS: Final = 64
#: Key ids in entries and signed-note key names: no space, no ``+`` (signed-note names).
KEY_ID_RE: Final = re.compile(r"\A[A-Za-z0-9._-]{1,64}\Z")
_TOPIC_RE: Final = re.compile(r"\A[A-Za-z0-9._-]{1,249}\Z")  # Kafka's legal topic names
_RECORD_TYPE_RE: Final = re.compile(r"\A[a-z][a-z0-9-]{0,63}\Z")
_COUNTRY_RE: Final = re.compile(r"\A[A-Z]{3}\Z")
_DIGEST_SIZES: Final = (32, 48)  # SHA-256, SHA-384 (cnsa)
#: Accepted time range: timestamp-micros of a 64-bit long, but nothing before 2000 or after 2200.
_MIN_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)
_MAX_TIME: Final = datetime(2200, 1, 1, tzinfo=UTC)


class EntryKind(StrEnum):
    """What happened. Avro enum ``exchange.audit.v1.EntryKind``."""

    PUBLISH = "publish"  #: the broker acknowledged an envelope we produced
    DELIVERY = "delivery"  #: a verified, decrypted record reached our sink
    QUARANTINE = "quarantine"  #: we refused a message and quarantined it
    RECEIPT = "receipt"  #: we received (or sent) a signed delivery receipt
    KEY_CHANGE = "key_change"  #: an agency key was enrolled, rotated or revoked
    TRUST_CHANGE = "trust_change"  #: a root or revocation list changed in the trust store


class Outcome(StrEnum):
    """How it ended. ``ok`` carries no reason; every other outcome needs one."""

    OK = "ok"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"
    REFUSED = "refused"


class AuditReason(StrEnum):
    """Reason codes: every :class:`~exchange.errors.IntegrityReason`, then infrastructure causes.

    A test pins that this enum, the Avro ``ReasonCode`` symbols and ``IntegrityReason`` agree.
    """

    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    UNKNOWN_VERSION = "unknown_version"
    UNKNOWN_SUITE = "unknown_suite"
    BAD_SIGNATURE = "bad_signature"
    BAD_INCLUSION_PROOF = "bad_inclusion_proof"
    UNTRUSTED_SENDER = "untrusted_sender"
    REVOKED_KEY = "revoked_key"
    KEY_NOT_VALID_AT_SIGNING_TIME = "key_not_valid_at_signing_time"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    NOT_A_RECIPIENT = "not_a_recipient"
    BAD_KEY_WRAP = "bad_key_wrap"
    DECRYPTION_FAILED = "decryption_failed"
    COMMITMENT_MISMATCH = "commitment_mismatch"
    BINDING_MISMATCH = "binding_mismatch"
    SENDER_NOT_AUTHORIZED = "sender_not_authorized"
    REPLAY = "replay"
    ROLLBACK = "rollback"
    SCHEMA_MISMATCH = "schema_mismatch"
    SUITE_MISMATCH = "suite_mismatch"
    HANDLING_VIOLATION = "handling_violation"
    BROKER_ERROR = "broker_error"
    SINK_ERROR = "sink_error"
    POLICY_REFUSED = "policy_refused"


class KeyAction(StrEnum):
    """Key and trust changes (``key_change``/``trust_change`` entries)."""

    ENROLLED = "enrolled"
    ROTATED = "rotated"
    REVOKED = "revoked"
    ROOT_ADDED = "root_added"
    ROOT_REMOVED = "root_removed"
    CRL_UPDATED = "crl_updated"


@dataclass(frozen=True)
class KafkaPosition:
    """Topic, partition and offset of a Kafka record.

    Raises:
        ValueError: topic syntax, or a negative partition/offset.
    """

    topic: str
    partition: int
    offset: int

    def __post_init__(self) -> None:
        if not _TOPIC_RE.match(self.topic):
            raise ValueError(f"got topic {self.topic!r}, expected Kafka topic syntax")
        if not 0 <= self.partition < 2**31 or not 0 <= self.offset < 2**63:
            raise ValueError("got a negative or out-of-range partition/offset")


@dataclass(frozen=True)
class KeyEvent:
    """A key or trust change: who, which key generation, and the certificate/CRL digest.

    Raises:
        ValueError: an identifier is outside its syntax or the fingerprint is not 32 bytes.
    """

    action: KeyAction
    agency_id: str
    key_id: str | None
    fingerprint: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", KeyAction(self.action))
        _check_agency(self.agency_id, "key_event.agency_id")
        if self.key_id is not None:
            _check_key_id(self.key_id)
        if len(self.fingerprint) != 32:
            raise ValueError(f"got a {len(self.fingerprint)}-byte fingerprint, expected 32")


@dataclass(frozen=True)
class AuditEntry:
    """One leaf of an agency's audit log (schema ``schemas/avro/audit/v1.avsc``).

    Attributes:
        kind: what happened.
        time: when (aware datetime; kept to the microsecond).
        log_agency: the agency whose log holds this entry.
        outcome: how it ended.
        reason: why it did not end ``ok`` (required exactly when ``outcome`` is not ``ok``).
        message_id: the envelope's message id.
        record_id: the record's id (a random UUID, never personal data).
        record_type: ``seizure``, ``trace-request``...
        signing_digest: the envelope signing digest ``d`` (32 or 48 bytes).
        header_digest: the envelope ``h_hdr`` (32 or 48 bytes).
        commitment: the salted plaintext commitment from the signed header.
        position: where the envelope is in Kafka.
        handling: the signed handling summary.
        sender: the signing agency and key generation.
        recipients: addressed agencies and key generations, sorted by agency, unique.
        key_event: for ``key_change``/``trust_change``.
        receipt_digest: SHA-256 of a signed receipt (``receipt`` entries).

    Raises:
        ValueError: a field is outside its syntax or bound, or a field the kind requires is
            missing.
    """

    kind: EntryKind
    time: datetime
    log_agency: str
    outcome: Outcome = Outcome.OK
    reason: AuditReason | None = None
    message_id: uuid.UUID | None = None
    record_id: uuid.UUID | None = None
    record_type: str | None = None
    signing_digest: bytes | None = None
    header_digest: bytes | None = None
    commitment: bytes | None = None
    position: KafkaPosition | None = None
    handling: HandlingSummary | None = None
    sender: KeyRef | None = None
    recipients: tuple[KeyRef, ...] = ()
    key_event: KeyEvent | None = None
    receipt_digest: bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", EntryKind(self.kind))
        object.__setattr__(self, "outcome", Outcome(self.outcome))
        if self.reason is not None:
            object.__setattr__(self, "reason", AuditReason(self.reason))
        if self.time.tzinfo is None or not _MIN_TIME <= self.time < _MAX_TIME:
            raise ValueError(f"got time {self.time!r}, expected an aware datetime in 2000..2200")
        object.__setattr__(self, "time", self.time.astimezone(UTC))
        _check_agency(self.log_agency, "log_agency")
        if (self.outcome is Outcome.OK) != (self.reason is None):
            raise ValueError("reason is required exactly when the outcome is not ok")
        if self.record_type is not None and not _RECORD_TYPE_RE.match(self.record_type):
            raise ValueError(f"got record_type {self.record_type!r}, expected a type name")
        for name in ("signing_digest", "header_digest", "commitment"):
            value = getattr(self, name)
            if value is not None and len(value) not in _DIGEST_SIZES:
                raise ValueError(f"got a {len(value)}-byte {name}, expected 32 or 48 bytes")
        if self.receipt_digest is not None and len(self.receipt_digest) != 32:
            raise ValueError("receipt_digest must be 32 bytes (SHA-256)")
        self._check_parties()
        self._check_kind()

    def _check_parties(self) -> None:
        if self.sender is not None:
            _check_ref(self.sender)
        if len(self.recipients) > MAX_LIST_ITEMS:
            raise ValueError(f"got {len(self.recipients)} recipients, expected <= {MAX_LIST_ITEMS}")
        for ref in self.recipients:
            _check_ref(ref)
        names = [r.agency_id for r in self.recipients]
        if names != sorted(set(names)):
            raise ValueError("recipients must be sorted by agency id and unique")
        h = self.handling
        if h is not None:
            lists = (h.releasable_to, h.releasable_to_agencies or (), h.caveats)
            if any(len(items) > MAX_LIST_ITEMS for items in lists):
                raise ValueError(f"a handling list holds more than {MAX_LIST_ITEMS} items")
            if any(not _COUNTRY_RE.match(c) for c in h.releasable_to):
                raise ValueError("releasable_to must hold ISO 3166-1 alpha-3 codes")

    def _check_kind(self) -> None:
        # docs/audit.md, "Entry": the fields each kind must carry.
        required: dict[EntryKind, tuple[str, ...]] = {
            EntryKind.PUBLISH: ("message_id", "signing_digest", "sender", "handling"),
            EntryKind.DELIVERY: ("message_id", "signing_digest", "sender", "handling", "position"),
            EntryKind.QUARANTINE: ("position",),
            EntryKind.RECEIPT: ("message_id", "signing_digest", "receipt_digest"),
            EntryKind.KEY_CHANGE: ("key_event",),
            EntryKind.TRUST_CHANGE: ("key_event",),
        }
        missing = [n for n in required[self.kind] if getattr(self, n) is None]
        if missing:
            raise ValueError(f"a {self.kind.value} entry needs {', '.join(missing)}")
        if self.kind is EntryKind.PUBLISH and self.outcome is Outcome.OK and not self.position:
            raise ValueError("a successful publish entry needs the position the broker gave")
        if self.kind is EntryKind.QUARANTINE and self.outcome is not Outcome.QUARANTINED:
            raise ValueError("a quarantine entry has outcome quarantined")


def _check_agency(value: str, name: str) -> None:
    if not is_agency_id(value):
        raise ValueError(f"got {name} {value!r}, expected an agency id CCC-AGENCY")


def _check_key_id(value: str) -> None:
    if not KEY_ID_RE.match(value):
        raise ValueError(f"got key id {value!r}, expected [A-Za-z0-9._-]{{1,64}}")


def _check_ref(ref: KeyRef) -> None:
    _check_agency(ref.agency_id, "agency id")
    _check_key_id(ref.key_id)
