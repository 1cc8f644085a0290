"""Anti-replay windows per producer and partition, and the pure planning of one write batch.

Unstable module. The rules are the sliding window of IPsec ESP (RFC 4303 §3.4.3) and DTLS
(RFC 9147 §4.5.1) keyed by ``(sender, producer_id, topic, partition)`` and reset by a newer
producer epoch; ``docs/sinks.md`` states them with their reasons. Every backend plans a batch
here, inside its own transaction, so SQLite, PostgreSQL and JSON-lines cannot disagree on a
verdict.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field

from exchange.sinks._model import DeliveredRecord, ReplayVerdict, TopicPartition

__all__ = ["WINDOW_SIZE", "BatchPlan", "ProducerWindow", "WindowKey", "plan_batch"]

#: How far below the highest sequence seen on a partition a sequence is still remembered.
#: Within one partition a producer's sequences only increase, so the window never has to
#: absorb reordering; it bounds how old a message may be and still be told fresh from seen
#: (DTLS uses 64, IPsec up to 1024).
WINDOW_SIZE = 1024
_MASK = (1 << WINDOW_SIZE) - 1
_BITMAP_BYTES = WINDOW_SIZE // 8

#: ``(sender, producer_id, topic, partition)``: one window per producer and partition.
WindowKey = tuple[str, str, str, int]


@dataclass(frozen=True)
class ProducerWindow:
    """What a sink remembers of one producer on one partition: epoch, highest sequence, window.

    Bit ``i`` of ``bitmap`` is set when sequence ``highest - i`` of ``epoch`` was accepted,
    so bit 0 (``highest`` itself) is always set.
    """

    epoch: int
    highest: int
    bitmap: int

    @classmethod
    def first(cls, epoch: int, sequence: int) -> ProducerWindow:
        """The window after a producer's first accepted record in ``epoch``."""
        return cls(epoch=epoch, highest=sequence, bitmap=1)

    def classify(self, epoch: int, sequence: int) -> ReplayVerdict:
        """FRESH, REPLAY or ROLLBACK for a record with a message id not yet stored."""
        if epoch < self.epoch:
            return ReplayVerdict.ROLLBACK
        if epoch > self.epoch or sequence > self.highest:
            return ReplayVerdict.FRESH
        behind = self.highest - sequence
        if behind >= WINDOW_SIZE:
            # Too old to tell whether it was seen: refuse rather than risk a second delivery.
            return ReplayVerdict.ROLLBACK
        if self.bitmap >> behind & 1:
            return ReplayVerdict.REPLAY
        return ReplayVerdict.FRESH

    def accept(self, epoch: int, sequence: int) -> ProducerWindow:
        """The window after accepting a FRESH ``(epoch, sequence)``.

        Raises:
            ValueError: the pair is not FRESH for this window (a caller bug).
        """
        if self.classify(epoch, sequence) is not ReplayVerdict.FRESH:
            raise ValueError(f"({epoch}, {sequence}) is not fresh for {self}")
        if epoch > self.epoch:
            # A newer epoch restarts the producer's sequence: the old window no longer applies.
            return ProducerWindow.first(epoch, sequence)
        if sequence > self.highest:
            shift = sequence - self.highest
            # Never shift by an attacker-sized amount: a jump past the window forgets it all.
            bitmap = 1 if shift >= WINDOW_SIZE else ((self.bitmap << shift) | 1) & _MASK
            return ProducerWindow(epoch, sequence, bitmap)
        return ProducerWindow(epoch, self.highest, self.bitmap | 1 << (self.highest - sequence))

    def bitmap_bytes(self) -> bytes:
        """The bitmap as fixed-size big-endian bytes, for storage."""
        return self.bitmap.to_bytes(_BITMAP_BYTES, "big")

    @classmethod
    def from_stored(cls, epoch: int, highest: int, bitmap: bytes) -> ProducerWindow:
        """Rebuild a window from :meth:`bitmap_bytes` and its coordinates.

        Raises:
            ValueError: the bitmap has the wrong size.
        """
        if len(bitmap) != _BITMAP_BYTES:
            raise ValueError(f"bitmap: got {len(bitmap)} bytes, expected {_BITMAP_BYTES}")
        return cls(epoch=epoch, highest=highest, bitmap=int.from_bytes(bitmap, "big"))


@dataclass
class BatchPlan:
    """What a backend must apply, inside one transaction, for one batch."""

    verdicts: list[ReplayVerdict] = field(default_factory=list)
    fresh: list[DeliveredRecord] = field(default_factory=list)
    #: final window of every (producer, partition) the batch advanced
    windows: dict[WindowKey, ProducerWindow] = field(default_factory=dict)
    #: next offset to read per partition touched (stored with max(): offsets never go back)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)


def plan_batch(
    items: Sequence[DeliveredRecord],
    *,
    stored_ids: Container[str],
    windows: Mapping[WindowKey, ProducerWindow],
    skipped_offsets: Mapping[TopicPartition, int] | None = None,
) -> BatchPlan:
    """Classify ``items`` in order against the stored state and earlier items of the batch.

    Args:
        items: the batch, in consumption order.
        stored_ids: message ids among ``items`` that the store already holds.
        windows: stored windows of (at least) every ``window_key`` in ``items``.
        skipped_offsets: offsets of messages consumed but not written (quarantined).

    Returns:
        The verdicts, the records to insert, the windows and next offsets to store.
    """
    plan = BatchPlan()
    seen: set[str] = set()
    current = dict(windows)
    for item in items:
        verdict = _verdict(item, stored_ids, seen, current)
        plan.verdicts.append(verdict)
        _advance_offset(plan.offsets, (item.topic, item.partition), item.offset)
        if verdict is not ReplayVerdict.FRESH:
            continue
        seen.add(item.message_id)
        plan.fresh.append(item)
        key = item.window_key
        window = current.get(key)
        if window is None:
            updated = ProducerWindow.first(item.producer_epoch, item.sequence)
        else:
            updated = window.accept(item.producer_epoch, item.sequence)
        current[key] = plan.windows[key] = updated
    for partition, offset in (skipped_offsets or {}).items():
        if not (
            isinstance(partition, tuple)
            and len(partition) == 2
            and isinstance(partition[0], str)
            and isinstance(partition[1], int)
        ):
            raise ValueError(f"skipped_offsets: got key {partition!r}, expected (topic, partition)")
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < 2**63 - 1:
            raise ValueError(f"skipped_offsets[{partition!r}]: got {offset!r}, expected int >= 0")
        _advance_offset(plan.offsets, partition, offset)
    return plan


def _verdict(
    item: DeliveredRecord,
    stored_ids: Container[str],
    seen: set[str],
    windows: Mapping[WindowKey, ProducerWindow],
) -> ReplayVerdict:
    # The message id comes first: a redelivered envelope is benign whatever its sequence.
    if item.message_id in seen or item.message_id in stored_ids:
        return ReplayVerdict.DUPLICATE
    window = windows.get(item.window_key)
    if window is None:
        return ReplayVerdict.FRESH
    return window.classify(item.producer_epoch, item.sequence)


def _advance_offset(
    offsets: dict[TopicPartition, int], partition: TopicPartition, last: int
) -> None:
    offsets[partition] = max(offsets.get(partition, 0), last + 1)
