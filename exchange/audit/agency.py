"""``AgencyAudit``: one agency's audit log as producers and consumers use it.

It wraps the :class:`~exchange.audit.AuditLog` with what a running pipeline needs:

* one writer at a time: an exclusive ``flock`` on ``<log dir>/.lock`` (a second process, or a
  witness, opening the same log fails at once instead of interleaving frames);
* batched appends (one ``fsync`` per batch) that **fail closed**: an
  :class:`~exchange.audit.AuditStorageError` propagates and stops the pipeline; nothing is
  ever skipped;
* checkpoints every ``checkpoint_every`` entries or ``checkpoint_interval``, and on close,
  signed with the agency's classic note key valid at that time;
* publication of the entries and each checkpoint through an optional :class:`AuditPublisher`
  (the ``audit.<agency>`` topic, :mod:`exchange.audit_bus`).

Example::

    with AgencyAudit.open(home / "audit" / "logs" / "MEX-FGR", keys) as audit:
        audit.record([entry, ...])          # fsync'd; checkpoint when due
    # leaving the block checkpoints what is left and releases the lock
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Protocol

from exchange.audit.checkpoint import SignedCheckpoint
from exchange.audit.entry import AuditEntry
from exchange.audit.errors import AuditStorageError
from exchange.audit.log import AuditLog
from exchange.audit.note import AgencyNoteSigner
from exchange.audit.storage import atomic_write
from exchange.crypto.keys import KeyProvider

__all__ = ["AgencyAudit", "AuditPublisher", "locked_log"]

LOCK_FILE: Final = ".lock"
#: How many entries the audit topic has received (so a restart publishes the rest).
PUBLISHED_FILE: Final = "published"


class AuditPublisher(Protocol):
    """Where a log's entries and checkpoints are published besides the disk."""

    def publish(self, entries: Sequence[bytes], first_index: int, checkpoint: bytes) -> None:
        """Publish ``entries`` (leaf data from ``first_index`` on), then ``checkpoint``.

        Raises:
            BrokerError: not acknowledged; the caller stops.
        """
        ...


@contextmanager
def locked_log(directory: Path, agency_id: str) -> Iterator[AuditLog]:
    """Open ``agency_id``'s log under an exclusive lock; close and unlock on exit.

    Raises:
        AuditStorageError: another writer holds the log, or the disk failed.
        AuditLogCorruptError: the log is damaged (see :meth:`AuditLog.open`).
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AuditStorageError(
                f"the audit log {directory} is in use by another writer (publish, consume or "
                "a witness); run one at a time for an agency"
            ) from None
        with AuditLog.open(directory, agency_id=agency_id) as log:
            yield log
    finally:
        os.close(fd)  # releases the flock


class AgencyAudit:
    """The audit log of the agency whose keys ``provider`` holds, ready for a pipeline.

    Use :meth:`open`. Thread-safe: producers append from their polling thread.

    Args:
        checkpoint_every: sign a checkpoint after this many new entries.
        checkpoint_interval: ... or when the last one is this old and entries are new.
        publisher: where entries and checkpoints are published (None: disk only).
        clock: injectable clock (aware UTC).
    """

    def __init__(
        self,
        log: AuditLog,
        provider: KeyProvider,
        release: Callable[[], None],
        *,
        checkpoint_every: int = 256,
        checkpoint_interval: timedelta = timedelta(seconds=10),
        publisher: AuditPublisher | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError(f"got checkpoint_every={checkpoint_every}, expected >= 1")
        self._log = log
        self._provider = provider
        self._release = release
        self._every = checkpoint_every
        self._interval = checkpoint_interval.total_seconds()
        self._publisher = publisher
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        latest = log.latest_checkpoint()
        self._checkpointed = 0 if latest is None else latest.checkpoint.size
        self._last_checkpoint = time.monotonic()
        self._published = self._read_published()
        self._closed = False

    @classmethod
    def open(
        cls,
        directory: Path,
        provider: KeyProvider,
        *,
        checkpoint_every: int = 256,
        checkpoint_interval: timedelta = timedelta(seconds=10),
        publisher: AuditPublisher | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> AgencyAudit:
        """Open (or create) the log of ``provider.agency_id`` in ``directory``, locked.

        Raises:
            AuditStorageError: another writer holds the log, or the disk failed.
            AuditLogCorruptError: the log is damaged.
        """
        with ExitStack() as stack:
            log = stack.enter_context(locked_log(directory, provider.agency_id))
            audit = cls(
                log, provider, stack.pop_all().close,
                checkpoint_every=checkpoint_every, checkpoint_interval=checkpoint_interval,
                publisher=publisher, clock=clock,
            )  # fmt: skip
        return audit

    def __enter__(self) -> AgencyAudit:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.close(checkpoint=exc_type is None)

    @property
    def agency_id(self) -> str:
        return self._log.agency_id

    @property
    def log(self) -> AuditLog:
        return self._log

    def now(self) -> datetime:
        """The audit clock (entry times)."""
        return self._clock()

    def record(self, entries: Sequence[AuditEntry]) -> range:
        """Append ``entries`` durably (one fsync), then checkpoint if one is due.

        Returns:
            Their leaf indexes.

        Raises:
            AuditStorageError: the disk failed; none of the entries is in the log and the
                caller must stop (fail closed).
            BrokerError: the checkpoint could not be published.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("AgencyAudit is closed")
            indexes = self._log.append_many(entries) if entries else range(0)
            due = self._log.size - self._checkpointed >= self._every or (
                self._log.size > self._checkpointed
                and time.monotonic() - self._last_checkpoint >= self._interval
            )
            if due:
                self._checkpoint_locked()
            return indexes

    def checkpoint(self) -> SignedCheckpoint | None:
        """Sign (and publish) a checkpoint of everything appended; None for an empty log.

        Raises:
            AuditStorageError: the disk failed.
            BrokerError: the checkpoint could not be published.
        """
        with self._lock:
            return self._checkpoint_locked()

    def close(self, *, checkpoint: bool = True) -> None:
        """Checkpoint what is left (unless ``checkpoint`` is False), then close and unlock."""
        with self._lock:
            if self._closed:
                return
            try:
                if checkpoint:
                    self._checkpoint_locked()
            finally:
                self._closed = True
                self._release()

    def _checkpoint_locked(self) -> SignedCheckpoint | None:
        if self._log.size == 0:
            return None
        now = self._clock()
        signed = self._log.checkpoint(AgencyNoteSigner(self._provider, at=now), now=now)
        self._checkpointed = signed.checkpoint.size
        self._last_checkpoint = time.monotonic()
        if self._publisher is not None and signed.checkpoint.size > self._published:
            first = self._published
            leaves = [self._log.entry_bytes(i) for i in range(first, signed.checkpoint.size)]
            self._publisher.publish(leaves, first, signed.encode())
            self._published = signed.checkpoint.size
            atomic_write(self._log.directory / PUBLISHED_FILE, f"{self._published}\n".encode())
        return signed

    def _read_published(self) -> int:
        path = self._log.directory / PUBLISHED_FILE
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise AuditStorageError(f"cannot read {path}: {exc}") from exc
        return int(text) if text.isdigit() and int(text) <= self._log.size else 0
