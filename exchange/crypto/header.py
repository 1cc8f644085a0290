"""The signed envelope header: fields, bounds and canonical Avro codec (schema
``schemas/avro/envelope/EnvelopeHeader.avsc``).

The header is transmitted as the exact bytes that are hashed and signed; decoding checks every
length against :class:`Bounds` before reading it and rejects any non-canonical encoding, so one
header has one byte string.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from exchange.crypto._avro import AvroFormatError, Reader, Writer
from exchange.crypto.keys import SuiteId
from exchange.crypto.suites import suite_info
from exchange.identifiers import CANONICAL_UUID_RE
from exchange.policy import TLP_LEVELS, HandlingSummary

__all__ = [
    "ENVELOPE_VERSION",
    "EPOCH_ID_LENGTH",
    "DerivedFrom",
    "EnvelopeHeader",
    "KeyRef",
    "ProducerRef",
    "check_identifier",
    "decode_header",
    "encode_header",
    "from_micros",
    "to_micros",
]

ENVELOPE_VERSION = 1
EPOCH_ID_LENGTH = 16
FINGERPRINT_LENGTH = 32
MAX_ID = 128  # agency ids, key ids, producer ids, record type names (bytes)
MAX_TOPIC = 249  # Kafka's own topic-name limit
MAX_LIST = 64  # recipients, provenance, releasable-to, named agencies, caveats
#: Longest validity (expiresAt - createdAt) a reader accepts: 366 days, in microseconds.
MAX_VALIDITY_US = 366 * 86_400 * 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(t: datetime) -> int:
    """Microseconds since the Unix epoch (Avro ``timestamp-micros``) of an aware datetime."""
    if t.tzinfo is None:
        raise ValueError("got a naive datetime, expected an aware one")
    return (t - _EPOCH) // timedelta(microseconds=1)


def from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True, order=True)
class KeyRef:
    """An agency and one of its key generations."""

    agency_id: str
    key_id: str


@dataclass(frozen=True)
class ProducerRef:
    """Producer id and position: a lower (epoch, sequence) is a rollback, an equal one a replay."""

    producer_id: str
    epoch: int
    sequence: int


@dataclass(frozen=True)
class DerivedFrom:
    """Provenance: a parent message and its signing digest."""

    message_id: uuid.UUID
    digest: bytes


@dataclass(frozen=True)
class EnvelopeHeader:
    """Everything the sender signs about a message (docs/envelope.md, "Signed header").

    Times are microseconds since the Unix epoch so the header round-trips exactly.
    """

    version: int
    suite: SuiteId
    message_id: uuid.UUID
    sender: KeyRef
    producer: ProducerRef
    created_us: int
    expires_us: int
    topic: str
    record_type: str
    schema_fingerprint: bytes
    handling: HandlingSummary
    provenance: tuple[DerivedFrom, ...]
    recipients: tuple[KeyRef, ...]
    dek_epoch: bytes
    nonce_counter: int
    commitment: bytes

    @property
    def created_at(self) -> datetime:
        return from_micros(self.created_us)

    @property
    def expires_at(self) -> datetime:
        return from_micros(self.expires_us)

    def recipient_key(self, agency_id: str) -> KeyRef | None:
        """The recipient entry of ``agency_id``, if it is addressed."""
        return next((r for r in self.recipients if r.agency_id == agency_id), None)


def _key_ref(w: Writer, ref: KeyRef) -> None:
    w.string(ref.agency_id).string(ref.key_id)


def _strings(w: Writer, values: tuple[str, ...]) -> None:
    w.array_start(len(values))
    for v in values:
        w.string(v)
    w.array_end(len(values))


def encode_header(h: EnvelopeHeader) -> bytes:
    """Canonical Avro encoding of ``h`` (field order = the .avsc field order)."""
    w = Writer().long(h.version).string(h.suite.value).string(str(h.message_id))
    _key_ref(w, h.sender)
    w.string(h.producer.producer_id).long(h.producer.epoch).long(h.producer.sequence)
    w.long(h.created_us).long(h.expires_us).string(h.topic)
    w.string(h.record_type).fixed(h.schema_fingerprint, FINGERPRINT_LENGTH)
    hs = h.handling
    w.string(hs.tlp)
    _strings(w, hs.releasable_to)
    if hs.releasable_to_agencies is None:
        w.union_index(0)
    else:
        w.union_index(1)
        _strings(w, hs.releasable_to_agencies)
    _strings(w, hs.caveats)
    w.string(hs.originator)
    w.array_start(len(h.provenance))
    for p in h.provenance:
        w.string(str(p.message_id)).bytes_(p.digest)
    w.array_end(len(h.provenance))
    w.array_start(len(h.recipients))
    for r in h.recipients:
        _key_ref(w, r)
    w.array_end(len(h.recipients))
    w.fixed(h.dek_epoch, EPOCH_ID_LENGTH).long(h.nonce_counter).bytes_(h.commitment)
    return w.getvalue()


_ID = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no space
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")  # Kafka's legal topic names


def check_identifier(value: str, *, topic: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a legal identifier (or Kafka topic name)."""
    if not (_TOPIC if topic else _ID).fullmatch(value):
        kind = "topic" if topic else "identifier"
        raise ValueError(f"got {kind} {value!r}, expected {(_TOPIC if topic else _ID).pattern}")


def _read_id(r: Reader, *, topic: bool = False) -> str:
    value = r.string(MAX_TOPIC if topic else MAX_ID)
    if (_TOPIC if topic else _ID).fullmatch(value) is None:
        raise AvroFormatError("illegal identifier")
    return value


def _read_uuid(r: Reader) -> uuid.UUID:
    text = r.string(36)
    if CANONICAL_UUID_RE.fullmatch(text) is None:
        raise AvroFormatError("bad or non-canonical uuid")
    return uuid.UUID(text)


def _read_sorted_ids(r: Reader, *, country: bool = False) -> tuple[str, ...]:
    n = r.array_count(MAX_LIST)
    values = tuple(r.string(3) if country else _read_id(r) for _ in range(n))
    r.array_end(n)
    if list(values) != sorted(set(values)):
        raise AvroFormatError("list not sorted and unique (non-canonical)")
    return values


def decode_header(data: bytes) -> EnvelopeHeader:
    """Decode and structurally validate a header.

    Raises:
        AvroFormatError: malformed, non-canonical or out of bounds (``.oversized`` set for
            bound violations). An unknown version or suite raises :class:`UnknownValueError`.
    """
    r = Reader(data)
    version = r.long()
    if version != ENVELOPE_VERSION:
        raise UnknownValueError("version")
    suite_text = r.string(32)
    try:
        suite = SuiteId(suite_text)
    except ValueError:
        raise UnknownValueError("suite") from None
    message_id = _read_uuid(r)
    sender = KeyRef(_read_id(r), _read_id(r))
    producer = ProducerRef(_read_id(r), r.bounded_long(0, 2**63 - 1), r.bounded_long(0, 2**63 - 1))
    created_us = r.bounded_long(0, 2**62)
    expires_us = r.bounded_long(0, 2**62)
    topic = _read_id(r, topic=True)
    record_type = _read_id(r)
    fingerprint = r.fixed(FINGERPRINT_LENGTH)
    tlp = r.string(16)
    if tlp not in TLP_LEVELS:
        raise AvroFormatError("unknown TLP")
    releasable_to = _read_sorted_ids(r, country=True)
    agencies = _read_sorted_ids(r) if r.union_index(2) == 1 else None
    caveats = _read_sorted_ids(r)
    originator = _read_id(r)
    try:
        handling = HandlingSummary(tlp, releasable_to, originator, agencies, caveats)
    except ValueError as exc:
        raise AvroFormatError("invalid handling summary") from exc
    size = suite_info(suite).digest_size
    n = r.array_count(MAX_LIST)
    provenance = tuple(DerivedFrom(_read_uuid(r), r.bytes_(48)) for _ in range(n))
    r.array_end(n)
    n = r.array_count(MAX_LIST)
    recipients = tuple(KeyRef(_read_id(r), _read_id(r)) for _ in range(n))
    r.array_end(n)
    dek_epoch = r.fixed(EPOCH_ID_LENGTH)
    counter = r.bounded_long(0, 2**32 - 1)
    commitment = r.bytes_(size)
    r.done()
    if len(commitment) != size or any(len(p.digest) not in (32, 48) for p in provenance):
        raise AvroFormatError("digest of the wrong length")
    agencies_only = [x.agency_id for x in recipients]
    if not recipients or agencies_only != sorted(set(agencies_only)):
        raise AvroFormatError("recipients empty, unsorted or repeated")
    if not 0 < expires_us - created_us <= MAX_VALIDITY_US:
        raise AvroFormatError("validity empty or longer than 366 days")
    return EnvelopeHeader(
        version, suite, message_id, sender, producer, created_us, expires_us, topic,
        record_type, fingerprint, handling, provenance, recipients, dek_epoch, counter,
        commitment,
    )  # fmt: skip


class UnknownValueError(AvroFormatError):
    """The header names a version or suite this implementation does not know."""

    def __init__(self, what: str) -> None:
        super().__init__(f"unknown {what}")
        self.what = what
