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
  (the ``audit.<agency>`` topic, :mod:`exchange.audit_bus`), on a thread of its own: a
  checkpoint is signed and kept in the local log first, and a cluster that does not answer
  never fails (or blocks) the pipeline; publication is retried every ``publish_retry`` with
  the latest checkpoint, and what is still unpublished on close is published by the next
  writer of the log (the ``published`` file).

Example::

    with AgencyAudit.open(home / "audit" / "logs" / "MEX-FGR", keys) as audit:
        audit.record([entry, ...])          # fsync'd; checkpoint when due
    # leaving the block checkpoints what is left and releases the lock
"""

from __future__ import annotations

import fcntl
import logging
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
from exchange.errors import BrokerError

__all__ = ["AgencyAudit", "AuditPublisher", "locked_log"]

LOCK_FILE: Final = ".lock"
#: How many entries the audit topic has received (so a restart publishes the rest).
PUBLISHED_FILE: Final = "published"

logger = logging.getLogger(__name__)


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
        publisher: where entries and checkpoints are published (None: disk only), from a
            thread of this object's; a failure is logged (once per outage) and retried.
        publish_retry: how long after a failed publication the next attempt starts.
        close_timeout: how long :meth:`close` waits for the last publication.
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
        publish_retry: timedelta = timedelta(seconds=5),
        close_timeout: timedelta = timedelta(seconds=30),
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
        self._released = False
        self._publication: _Publication | None = None
        if publisher is not None:
            self._publication = _Publication(
                self, publisher, retry=publish_retry.total_seconds(),
                close_timeout=close_timeout.total_seconds(),
            )  # fmt: skip
            if latest is not None and latest.checkpoint.size > self._published:
                # An earlier writer could not publish its last checkpoints: do it now.
                self._publication.submit(latest)

    @classmethod
    def open(
        cls,
        directory: Path,
        provider: KeyProvider,
        *,
        checkpoint_every: int = 256,
        checkpoint_interval: timedelta = timedelta(seconds=10),
        publisher: AuditPublisher | None = None,
        publish_retry: timedelta = timedelta(seconds=5),
        close_timeout: timedelta = timedelta(seconds=30),
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
                publisher=publisher, publish_retry=publish_retry, close_timeout=close_timeout,
                clock=clock,
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

    @property
    def published(self) -> int:
        """How many entries the audit topic has acknowledged (0 without a publisher)."""
        with self._lock:
            return self._published

    def wait_published(self, timeout: float) -> bool:
        """Wait until the latest checkpoint is published; False if ``timeout`` passed first
        (or there is no publisher)."""
        return self._publication is not None and self._publication.wait_idle(timeout)

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

        Publication happens on another thread: a cluster that does not answer delays it, and
        never fails this call.

        Raises:
            AuditStorageError: the disk failed.
        """
        with self._lock:
            return self._checkpoint_locked()

    def close(self, *, checkpoint: bool = True) -> None:
        """Checkpoint what is left (unless ``checkpoint`` is False), wait (at most
        ``close_timeout``) for its publication, then close and unlock. What could not be
        published is published by the next writer of the log."""
        with self._lock:
            if self._closed:
                return
            try:
                if checkpoint:
                    self._checkpoint_locked()
            finally:
                self._closed = True
        try:
            if self._publication is not None:
                self._publication.stop()
        finally:
            with self._lock:
                self._released = True
            self._release()

    def _checkpoint_locked(self) -> SignedCheckpoint | None:
        if self._log.size == 0:
            return None
        now = self._clock()
        signed = self._log.checkpoint(AgencyNoteSigner(self._provider, at=now), now=now)
        self._checkpointed = signed.checkpoint.size
        self._last_checkpoint = time.monotonic()
        if self._publication is not None and signed.checkpoint.size > self._published:
            self._publication.submit(signed)
        return signed

    def _unpublished(self, size: int) -> tuple[int, list[bytes]]:
        """The first unpublished index and the leaves from there up to ``size``."""
        with self._lock:
            first = self._published
            return first, [self._log.entry_bytes(i) for i in range(first, size)]

    def _mark_published(self, size: int) -> None:
        with self._lock:
            # After release the log belongs to the next writer: it republishes from the file.
            if size > self._published and not self._released:
                self._published = size
                atomic_write(self._log.directory / PUBLISHED_FILE, f"{size}\n".encode())

    def _read_published(self) -> int:
        path = self._log.directory / PUBLISHED_FILE
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise AuditStorageError(f"cannot read {path}: {exc}") from exc
        return int(text) if text.isdigit() and int(text) <= self._log.size else 0


class _Publication:
    """Publishes the latest signed checkpoint (and the entries before it) on its own thread.

    Only the newest checkpoint waiting matters: it covers every entry of the older ones, so
    a checkpoint signed while an earlier one is still unpublished replaces it.
    """

    def __init__(
        self, audit: AgencyAudit, publisher: AuditPublisher, *, retry: float, close_timeout: float
    ) -> None:
        self._audit = audit
        self._publisher = publisher
        self._retry = retry
        self._close_timeout = close_timeout
        self._cond = threading.Condition()
        self._due: SignedCheckpoint | None = None
        self._busy = False
        self._stopping = False
        self._failing = False
        self._thread = threading.Thread(
            target=self._run, name=f"audit-publish-{audit.agency_id}", daemon=True
        )
        self._thread.start()

    def submit(self, signed: SignedCheckpoint) -> None:
        with self._cond:
            if self._due is None or signed.checkpoint.size >= self._due.checkpoint.size:
                self._due = signed
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._due is not None or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def stop(self) -> None:
        """Give the last checkpoint ``close_timeout`` to be published, then stop."""
        done = self.wait_idle(self._close_timeout)
        with self._cond:
            self._stopping = True
            left = self._due
            self._cond.notify_all()
        self._thread.join(timeout=self._close_timeout)
        if not done and left is not None:
            logger.warning(
                "%s: audit checkpoint of %d entries not published to the audit topic "
                "(cluster unreachable); it is in the local log, and the next writer of this "
                "log publishes it",
                self._audit.agency_id, left.checkpoint.size,
            )  # fmt: skip

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._due is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                signed, self._due, self._busy = self._due, None, True
            assert signed is not None  # noqa: S101  # the loop above waits for one
            ok = self._publish(signed)
            with self._cond:
                self._busy = False
                if not ok:
                    if self._due is None:
                        self._due = signed
                    self._cond.notify_all()
                    # Wait before retrying (a stop or close ends the wait early).
                    self._cond.wait_for(lambda: self._stopping, timeout=self._retry)
                else:
                    self._cond.notify_all()

    def _publish(self, signed: SignedCheckpoint) -> bool:
        size = signed.checkpoint.size
        first, leaves = self._audit._unpublished(size)  # its owner's state
        if not leaves:
            return True
        try:
            self._publisher.publish(leaves, first, signed.encode())
            self._audit._mark_published(size)
        except (BrokerError, AuditStorageError) as exc:
            if not self._failing:
                self._failing = True
                logger.warning(
                    "%s: audit checkpoint of %d entries kept in the local log, not yet "
                    "published to the audit topic (%s); retrying every %.0f s",
                    self._audit.agency_id, size, exc, self._retry,
                )  # fmt: skip
            return False
        if self._failing:
            self._failing = False
            logger.warning(
                "%s: audit topic reachable again; published the log up to %d entries",
                self._audit.agency_id, size,
            )  # fmt: skip
        return True
