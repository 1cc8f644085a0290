"""One message through the consume path: bounds, verify, bind, open, decode, check.

Unstable module of :mod:`exchange.consumers`. :class:`EnvelopeExaminer` turns the raw value of
a Kafka message into an :class:`Accepted` record, a :class:`Refusal` with a reason code for
quarantine, or ``None`` when the envelope is validly addressed to someone else (then it is
never decrypted). It knows nothing of sinks, offsets or quarantine topics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import Message

from exchange.crypto import Opener, VerifiedEnvelope
from exchange.crypto.open import VerifiedForOpening
from exchange.errors import IntegrityError, IntegrityReason, RecordValidationError
from exchange.metrics import ExchangeMetrics
from exchange.policy import summary_from_handling
from exchange.records import ExchangeRecord, record_type
from exchange.routing import exchange_topic, reach_for
from exchange.sinks import DeliveredRecord

__all__ = ["MAX_ENVELOPE_BYTES", "Accepted", "EnvelopeExaminer", "Refusal"]

#: Largest envelope accepted; checked before any decoding.
MAX_ENVELOPE_BYTES = 1 << 20


@dataclass(frozen=True)
class Refusal:
    """Why a message goes to quarantine; ``detail`` never quotes record content."""

    reason: str
    detail: str | None = None
    verified: VerifiedEnvelope | None = None


@dataclass(frozen=True)
class Accepted:
    """A verified, decrypted, schema-valid record addressed and released to us."""

    item: DeliveredRecord
    record: ExchangeRecord
    verified: VerifiedEnvelope


class EnvelopeExaminer:
    """Examines messages for one recipient agency (see the module docstring)."""

    def __init__(
        self, opener: Opener, *, agency_id: str, topic_prefix: str, metrics: ExchangeMetrics
    ) -> None:
        self._opener = opener
        self._agency = agency_id
        self._prefix = topic_prefix
        self._metrics = metrics

    def examine(self, msg: Message) -> Accepted | Refusal | None:
        """Verify, decrypt and decode one message; None when it is not addressed to us."""
        value = msg.value() or b""
        began = time.perf_counter()
        verdict = self._verify(value, msg.topic() or "")
        if not isinstance(verdict, VerifiedForOpening):
            return verdict
        checked = verdict.verified
        h = checked.header
        try:
            # Opens the bytes verified above without decoding and verifying them again.
            opened = self._opener.open_verified(verdict)
            rtype = record_type(h.record_type)
            record = rtype.decode(opened.plaintext, writer_fingerprint=h.schema_fingerprint)
        except IntegrityError as exc:
            return Refusal(exc.reason.value, None, checked)
        except RecordValidationError:
            # The message is not repeated: it may quote record content.
            return Refusal(IntegrityReason.SCHEMA_MISMATCH.value, None, checked)
        if summary_from_handling(record.handling) != h.handling:
            return Refusal(
                IntegrityReason.HANDLING_VIOLATION.value,
                "the record's handling differs from the signed handling summary",
                checked,
            )
        self._metrics.open_seconds.labels(suite=h.suite.value).observe(time.perf_counter() - began)
        item = DeliveredRecord(
            message_id=str(h.message_id),
            sender=h.sender.agency_id,
            producer_id=h.producer.producer_id,
            producer_epoch=h.producer.epoch,
            sequence=h.producer.sequence,
            record_type=h.record_type,
            record_id=record.meta.record_id,
            topic=msg.topic() or "",
            partition=msg.partition() or 0,
            offset=msg.offset() or 0,
            created_at=h.created_at,
            record_json=rtype.to_json(record),
        )
        return Accepted(item, record, checked)

    def _verify(self, value: bytes, topic: str) -> VerifiedForOpening | Refusal | None:
        """Bounds, signature, trust and topic binding; None when not addressed to us."""
        if len(value) > MAX_ENVELOPE_BYTES:
            return Refusal(IntegrityReason.OVERSIZED.value, f"{len(value)} bytes")
        try:
            checked = self._opener.verify_for_opening(value)
        except IntegrityError as exc:
            return Refusal(exc.reason.value)
        verified = checked.verified
        h = verified.header
        if not (h.topic == topic == self._expected_topic(verified)):
            # A validly signed envelope moved to another topic than the one it was sealed for,
            # or sealed for a topic that is not its sender's for this type and reach.
            return Refusal(
                IntegrityReason.BINDING_MISMATCH.value, f"sealed for topic {h.topic}", verified
            )
        if h.recipient_key(self._agency) is None:
            return None  # not addressed to us: never decrypted
        return checked

    def _expected_topic(self, verified: VerifiedEnvelope) -> str | None:
        h = verified.header
        reach = reach_for(h.sender.agency_id, [r.agency_id for r in h.recipients])
        try:
            return exchange_topic(h.sender.agency_id, reach, h.record_type, prefix=self._prefix)
        except ValueError:
            return None
