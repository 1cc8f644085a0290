"""Batch sealing: many envelopes, one signature over their Merkle root (RFC 9162 §2.1).

Implementation of :class:`exchange.crypto.BatchSealer` (unstable module).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from types import TracebackType

from exchange.crypto.dek import EpochPolicy
from exchange.crypto.envelope import aad
from exchange.crypto.header import DerivedFrom, EnvelopeHeader
from exchange.crypto.keys import KeyProvider, SuiteId, TrustResolver
from exchange.crypto.seal import DEFAULT_TTL, Sealer, _Leaf
from exchange.policy import HandlingSummary

__all__ = ["BatchSealer", "PendingEnvelope"]


class PendingEnvelope:
    """The future result of :meth:`BatchSealer.add`; ready after the batch is flushed.

    Besides the envelope bytes it exposes what the sealer already knows about its own
    envelope (the signed header and its digests), so a producer can write audit entries
    without verifying what it just sealed.
    """

    __slots__ = ("_header", "_header_digest", "_signing_digest", "_value")

    def __init__(self) -> None:
        self._value: bytes | None = None
        self._header: EnvelopeHeader | None = None
        self._signing_digest = b""
        self._header_digest = b""

    def done(self) -> bool:
        return self._value is not None

    def result(self) -> bytes:
        """The sealed envelope.

        Raises:
            RuntimeError: the batch has not been flushed yet.
        """
        if self._value is None:
            raise RuntimeError("the batch has not been flushed; call flush() first")
        return self._value

    @property
    def header(self) -> EnvelopeHeader:
        """The signed header (the same a verifier gets).

        Raises:
            RuntimeError: the batch has not been flushed yet.
        """
        if self._header is None:
            raise RuntimeError("the batch has not been flushed; call flush() first")
        return self._header

    @property
    def signing_digest(self) -> bytes:
        """The envelope signing digest ``d`` (``VerifiedEnvelope.signing_digest``).

        Raises:
            RuntimeError: the batch has not been flushed yet.
        """
        self.result()
        return self._signing_digest

    @property
    def header_digest(self) -> bytes:
        """``h_hdr``, the digest of the signed header bytes (``VerifiedEnvelope.header_digest``).

        Raises:
            RuntimeError: the batch has not been flushed yet.
        """
        self.result()
        return self._header_digest

    def _resolve(self, value: bytes, leaf: _Leaf) -> None:
        self._header = leaf.header
        self._signing_digest = leaf.digest
        self._header_digest = aad(leaf.header.suite, leaf.header_bytes)
        self._value = value

    def __repr__(self) -> str:
        return f"PendingEnvelope(done={self.done()})"


class BatchSealer:
    """Collects messages and signs them with one signature per batch.

    A batch is flushed when it reaches ``max_batch`` messages, when :meth:`add` finds the
    oldest pending message older than ``linger``, on :meth:`flush`, and on leaving the
    ``with`` block (an exception in the block drops the unsigned batch: its futures never
    resolve). Using a closed sealer raises :class:`RuntimeError`. Not thread-safe.

    Args:
        sender, trust, suite, producer_id, producer_epoch, epoch_policy, ttl, clock: as
            :class:`~exchange.crypto.Sealer`.
        max_batch: messages per signature, 1..4096 (a batch of one is a plain signature).
        linger: longest time a message waits for its batch.

    Example::

        with BatchSealer(provider, trust, suite=SuiteId.CLASSIC, max_batch=64) as batch:
            pending = [batch.add(b, recipients=["USA-ATF"], ...) for b in records]
        envelopes = [p.result() for p in pending]
    """

    def __init__(
        self,
        sender: KeyProvider,
        trust: TrustResolver,
        *,
        suite: SuiteId,
        max_batch: int = 64,
        linger: timedelta = timedelta(milliseconds=50),
        producer_id: str | None = None,
        producer_epoch: int | None = None,
        epoch_policy: EpochPolicy | None = None,
        ttl: timedelta = DEFAULT_TTL,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not 1 <= max_batch <= 4096:
            raise ValueError(f"got max_batch={max_batch}, expected 1..4096")
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sealer = Sealer(
            sender, trust, suite=suite, producer_id=producer_id, producer_epoch=producer_epoch,
            epoch_policy=epoch_policy, ttl=ttl, clock=self._clock,
        )  # fmt: skip
        self._max = max_batch
        self._linger = linger
        self._leaves: list[_Leaf] = []
        self._pending: list[PendingEnvelope] = []
        self._first: datetime | None = None
        self._closed = False
        self.batches_signed = 0

    def __enter__(self) -> BatchSealer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.flush()
        self._closed = True

    def add(
        self,
        plaintext: bytes,
        *,
        recipients: Iterable[str],
        record_type: str,
        schema_fingerprint: bytes,
        handling: HandlingSummary,
        topic: str,
        provenance: Iterable[DerivedFrom] = (),
        ttl: timedelta | None = None,
        now: datetime | None = None,
    ) -> PendingEnvelope:
        """Encrypt one message now; its signature comes with the batch.

        Raises:
            PolicyError: the handling or publishing rights forbid this message.
            RuntimeError: the sealer is closed.
        """
        if self._closed:
            raise RuntimeError("BatchSealer is closed")
        now = now or self._clock()
        if self._first is not None and now - self._first >= self._linger:
            self.flush()
        leaf = self._sealer._prepare(
            plaintext, recipients=recipients, record_type=record_type,
            schema_fingerprint=schema_fingerprint, handling=handling, topic=topic,
            provenance=provenance, ttl=ttl, now=now,
        )  # fmt: skip
        if self._leaves and leaf.header.sender != self._leaves[0].header.sender:
            # The sender key rotated mid-batch: the pending leaves need the old key's signature.
            self.flush()
        future = PendingEnvelope()
        self._leaves.append(leaf)
        self._pending.append(future)
        self._first = self._first or now
        if len(self._leaves) >= self._max:
            self.flush()
        return future

    def flush_if_due(self, now: datetime | None = None) -> int:
        """Flush if the oldest pending message has waited ``linger``; call it from poll loops.

        Returns:
            The number of envelopes completed (0 if nothing was due).
        """
        now = now or self._clock()
        if self._first is not None and now - self._first >= self._linger:
            return self.flush()
        return 0

    def flush(self) -> int:
        """Sign the pending batch (one signature) and resolve its futures.

        Returns:
            The number of envelopes completed.
        """
        if self._closed:
            raise RuntimeError("BatchSealer is closed")
        if not self._leaves:
            return 0
        leaves, pending = self._leaves, self._pending
        self._leaves, self._pending, self._first = [], [], None
        for future, leaf, blob in zip(pending, leaves, self._sealer._finish(leaves), strict=True):
            future._resolve(blob, leaf)
        self.batches_signed += 1
        return len(leaves)
