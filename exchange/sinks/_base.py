"""Behaviour every sink backend shares: lifecycle, argument checks, the read-only pre-check.

Unstable module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Self

from exchange._internal.lifecycle import Lifecycle
from exchange.sinks._model import DeliveredRecord, ReplayVerdict, TopicPartition, WriteResult
from exchange.sinks._replay import ProducerWindow, WindowKey, plan_batch

__all__ = ["BeforeCommitHook", "SinkBase", "check_group_id", "check_items"]

#: Called inside a write transaction after every statement, just before it commits. Tests use
#: it to kill the process mid-transaction; production code leaves it None.
BeforeCommitHook = Callable[[], None]


def check_group_id(group_id: str) -> None:
    """Raise ValueError unless ``group_id`` is a non-empty str."""
    if not isinstance(group_id, str) or not group_id:
        raise ValueError(f"group_id: got {group_id!r}, expected a non-empty str")


def check_items(items: Sequence[DeliveredRecord]) -> tuple[DeliveredRecord, ...]:
    """Return ``items`` as a tuple; raise TypeError for anything but DeliveredRecords."""
    batch = tuple(items)
    for item in batch:
        if not isinstance(item, DeliveredRecord):
            raise TypeError(f"items: got {type(item).__name__}, expected DeliveredRecord")
    return batch


class SinkBase(ABC):
    """Lifecycle, context management and :meth:`check` on top of :meth:`_read_state`."""

    def __init__(self) -> None:
        self._lifecycle = Lifecycle(type(self).__name__)

    @abstractmethod
    def _read_state(
        self, batch: Sequence[DeliveredRecord]
    ) -> tuple[set[str], dict[WindowKey, ProducerWindow]]:
        """Stored message ids among ``batch`` and stored windows of its items' window keys."""

    @abstractmethod
    def _write(
        self,
        group_id: str,
        batch: tuple[DeliveredRecord, ...],
        skipped_offsets: Mapping[TopicPartition, int] | None,
    ) -> WriteResult:
        """Store the checked ``batch`` atomically (see :meth:`write`)."""

    def write(
        self,
        group_id: str,
        items: Sequence[DeliveredRecord],
        *,
        skipped_offsets: Mapping[TopicPartition, int] | None = None,
    ) -> WriteResult:
        """Store a batch, its replay windows and the group's next offsets atomically.

        Args:
            group_id: Kafka consumer group whose offsets advance.
            items: verified records in consumption order; DUPLICATEs are ignored.
            skipped_offsets: per partition, the offset of the last message consumed but
                not written (quarantined), so it is not read again.

        Returns:
            One verdict per item; only FRESH items were stored.

        Raises:
            SinkError: the store failed and nothing of the batch is stored.
            RuntimeError: the sink is closed.
        """
        self._lifecycle.check_open()
        check_group_id(group_id)
        return self._write(group_id, check_items(items), skipped_offsets)

    @abstractmethod
    def _close(self) -> None:
        """Release the backend's resources (called once)."""

    def check(
        self, item: DeliveredRecord, *, pending: Sequence[DeliveredRecord] = ()
    ) -> ReplayVerdict:
        """Read-only verdict for ``item`` against stored state plus ``pending``.

        The consumer calls this before quarantining, with the records it has accepted for
        the current batch as ``pending`` (each call reads all of ``pending`` again: for
        large batches prefer :meth:`check_batch`). :meth:`write` decides again
        inside its transaction, so a verdict here is advice that cannot be made stale by
        a crash, only by a concurrent consumer (reported in ``WriteResult.verdicts``).

        Args:
            item: the record to judge.
            pending: records of the batch being built, in order, not yet written.

        Returns:
            FRESH, DUPLICATE, REPLAY or ROLLBACK.

        Raises:
            SinkError: the store could not be read.
            RuntimeError: the sink is closed.
        """
        return self.check_batch((*pending, item))[-1]

    def check_batch(self, items: Sequence[DeliveredRecord]) -> tuple[ReplayVerdict, ...]:
        """Read-only verdicts for a whole batch in one read of the store.

        Verdict ``i`` treats items ``0..i-1`` as written. Dropping the non-FRESH items and
        writing the rest yields the same verdicts, since only FRESH items change state; so
        a consumer can check a polled batch once, quarantine the rejections and write.

        Args:
            items: the batch, in consumption order.

        Returns:
            One verdict per item.

        Raises:
            SinkError: the store could not be read.
            RuntimeError: the sink is closed.
        """
        self._lifecycle.check_open()
        batch = check_items(items)
        if not batch:
            return ()
        stored_ids, windows = self._read_state(batch)
        return tuple(plan_batch(batch, stored_ids=stored_ids, windows=windows).verdicts)

    def close(self) -> None:
        """Release the store. Idempotent; a closed sink raises RuntimeError when used."""
        if self._lifecycle.close():
            self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
