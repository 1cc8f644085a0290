"""The sink contract: what a consumer hands a sink, what it gets back, and the protocol.

Unstable module; import the public names from :mod:`exchange.sinks`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol, Self

from exchange.errors import InfrastructureError, IntegrityReason

__all__ = [
    "DeliveredRecord",
    "ReplayVerdict",
    "Sink",
    "SinkError",
    "TopicPartition",
    "WriteResult",
]

#: ``(topic, partition)``: the key of every offset map a sink takes or returns.
TopicPartition = tuple[str, int]


class SinkError(InfrastructureError):
    """The sink's store failed (I/O, database, lock held, corrupt segment).

    ``retriable`` is True for transient failures (a database that went away, a lock timeout)
    and False for ones that need an operator (a corrupt segment, a schema written by a newer
    version).
    """


# The widest integers every backend stores exactly (SQL BIGINT/INTEGER, Avro long/int).
_INT_LIMITS = {
    "producer_epoch": 2**63 - 1,
    "sequence": 2**63 - 1,
    "partition": 2**31 - 1,
    "offset": 2**63 - 2,  # offset + 1 is stored as the next offset
}


_TEXT_FIELDS = ("message_id", "sender", "producer_id", "record_type", "record_id", "topic")


@dataclass(frozen=True)
class DeliveredRecord:
    """Everything a sink stores for one verified, decrypted, schema-valid record.

    Args:
        message_id: envelope message id, unique per envelope (the idempotence key).
        sender: agency id of the signer, e.g. ``"MEX-FGR"``.
        producer_id: the sending producer instance, from the signed header.
        producer_epoch: the producer's epoch; a new epoch restarts its sequence.
        sequence: the producer's per-epoch sequence number.
        record_type: ``seizure``, ``trace-request``, ``trace-response``, ``ballistic`` or ``intel``.
        record_id: ``meta.recordId`` of the record.
        topic: Kafka topic the envelope was read from.
        partition: Kafka partition.
        offset: Kafka offset of the envelope (the next offset to read is ``offset + 1``).
        created_at: signed creation time; must be timezone-aware.
        record_json: the validated record as JSON, fields by alias.

    Raises:
        ValueError: an empty id, a number out of range (negative, or wider than a SQL
            BIGINT; INTEGER for ``partition``), a naive ``created_at`` or a string that is not
            encodable as UTF-8 (a lone surrogate).
        TypeError: ``record_json`` is not a str.
    """

    message_id: str
    sender: str
    producer_id: str
    producer_epoch: int
    sequence: int
    record_type: str
    record_id: str
    topic: str
    partition: int
    offset: int
    created_at: datetime
    record_json: str

    def __post_init__(self) -> None:
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name}: got {value!r}, expected a non-empty str")
        for name, limit in _INT_LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
                raise ValueError(f"{name}: got {value!r}, expected an int in [0, {limit}]")
        if self.created_at.tzinfo is None:
            raise ValueError("created_at: got a naive datetime, expected a timezone-aware one")
        if not isinstance(self.record_json, str):
            raise TypeError(f"record_json: got {type(self.record_json).__name__}, expected str")
        for name in (*_TEXT_FIELDS, "record_json"):
            value = getattr(self, name)
            # Every backend stores UTF-8: a lone surrogate would fail in SQLite's driver and
            # round-trip in JSON, so refuse it here, the same for all (isascii() is O(1)).
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError(f"{name}: not encodable as UTF-8 (a lone surrogate)") from None

    @property
    def producer_key(self) -> tuple[str, str]:
        """``(sender, producer_id)``: the authenticated producer that sealed this record."""
        return (self.sender, self.producer_id)

    @property
    def window_key(self) -> tuple[str, str, str, int]:
        """``(sender, producer_id, topic, partition)``: whose replay window this record advances.

        One window per producer *and partition*: Kafka keeps a partition in order, so within
        it a producer's sequences only increase (see ``docs/sinks.md``).
        """
        return (self.sender, self.producer_id, self.topic, self.partition)

    def to_json_dict(self) -> dict[str, Any]:
        """The record as a JSON-ready dict (``created_at`` in ISO 8601)."""
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return data

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> DeliveredRecord:
        """Inverse of :meth:`to_json_dict`.

        Raises:
            ValueError: a field is missing or invalid.
            KeyError: a field is missing.
        """
        fields = dict(data)
        fields["created_at"] = datetime.fromisoformat(fields["created_at"])
        return cls(**fields)

    def to_json(self) -> str:
        """One compact JSON line (no newline)."""
        return json.dumps(self.to_json_dict(), separators=(",", ":"), sort_keys=True)


class ReplayVerdict(StrEnum):
    """How a record relates to what the sink already holds (see ``docs/sinks.md``)."""

    #: never seen: store it
    FRESH = "fresh"
    #: this message id is already stored: benign redelivery, ignore silently
    DUPLICATE = "duplicate"
    #: a new message id reuses a (producer, epoch, sequence) already accepted on its partition
    REPLAY = "replay"
    #: an epoch older than the producer's newest on its partition, or a sequence below the
    #: partition's window
    ROLLBACK = "rollback"

    @property
    def integrity_reason(self) -> IntegrityReason | None:
        """The quarantine reason code for a rejection, None for FRESH and DUPLICATE."""
        if self is ReplayVerdict.REPLAY:
            return IntegrityReason.REPLAY
        if self is ReplayVerdict.ROLLBACK:
            return IntegrityReason.ROLLBACK
        return None


@dataclass(frozen=True)
class WriteResult:
    """What one :meth:`Sink.write` did.

    Args:
        verdicts: one verdict per written item, in the order given. Only FRESH items were
            stored; REPLAY/ROLLBACK here means another consumer got there first between
            :meth:`Sink.check` and :meth:`Sink.write` (quarantine the item).
    """

    verdicts: tuple[ReplayVerdict, ...]

    @property
    def written(self) -> int:
        """Records stored by this write."""
        return self.verdicts.count(ReplayVerdict.FRESH)

    @property
    def duplicates(self) -> int:
        """Records ignored because their message id was already stored."""
        return self.verdicts.count(ReplayVerdict.DUPLICATE)

    @property
    def rejected(self) -> int:
        """Records refused as REPLAY or ROLLBACK."""
        return len(self.verdicts) - self.written - self.duplicates


class Sink(Protocol):
    """An exactly-once store for delivered records (SQLite, PostgreSQL, JSON-lines).

    Records, replay state (per producer and partition) and the consumer group's next offsets
    change in one atomic step, so after a crash at any point they agree: the consumer seeks
    to :meth:`stored_offsets` and re-reads exactly what was not stored.
    """

    def stored_offsets(self, group_id: str) -> dict[TopicPartition, int]:
        """Next offset to read per ``(topic, partition)`` for ``group_id``, from the sink."""
        ...

    def check(
        self, item: DeliveredRecord, *, pending: Sequence[DeliveredRecord] = ()
    ) -> ReplayVerdict:
        """Read-only verdict for ``item`` as if ``pending`` were written just before it."""
        ...

    def check_batch(self, items: Sequence[DeliveredRecord]) -> tuple[ReplayVerdict, ...]:
        """Read-only verdicts for a batch, each as if the items before it were written."""
        ...

    def write(
        self,
        group_id: str,
        items: Sequence[DeliveredRecord],
        *,
        skipped_offsets: Mapping[TopicPartition, int] | None = None,
    ) -> WriteResult:
        """Store FRESH items, advance replay state and next offsets in one transaction."""
        ...

    def count(self) -> int:
        """Number of stored records."""
        ...

    def records(self) -> Iterator[DeliveredRecord]:
        """Stored records in storage order."""
        ...

    def get(self, message_id: str) -> DeliveredRecord | None:
        """The stored record with this message id, or None."""
        ...

    def close(self) -> None:
        """Release the store; idempotent."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
