"""DEK epochs (producer side) and the unwrapped-DEK cache (consumer side). Unstable, internal.

Performance design (DESIGN.md): one random 256-bit DEK per (recipient set, suite) serves at
most ``max_messages`` messages or ``max_age`` seconds. Its HPKE wraps are computed once and
carried in every envelope of the epoch, so each envelope stays self-contained. Message ``i``
of an epoch uses the AES-GCM nonce ``counter_nonce(i)`` and carries ``i`` in the signed
header; because a DEK exists only in memory and dies with its epoch, a restart can never
reuse a (key, nonce) pair (NIST SP 800-38D §8.2.1, deterministic construction).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from exchange.crypto import hazmat
from exchange.crypto.envelope import wrap_info
from exchange.crypto.header import EPOCH_ID_LENGTH, KeyRef
from exchange.crypto.keys import AgencyKey, KemPublicKey, SuiteId

__all__ = ["DekCache", "DekEpoch", "EpochPolicy"]

_CACHE_LABEL = b"exchange/envelope/v1/dek-cache"


@dataclass(frozen=True)
class EpochPolicy:
    """Bounds of one DEK epoch.

    Attributes:
        max_messages: messages per DEK (1 = a fresh DEK and fresh wraps per message).
        max_age: wall-clock lifetime of a DEK.
    """

    max_messages: int = 10_000
    max_age: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if not 1 <= self.max_messages <= 2**32:
            raise ValueError(f"got max_messages={self.max_messages}, expected 1..2**32")
        if not timedelta(0) < self.max_age <= timedelta(days=1):
            raise ValueError(f"got max_age={self.max_age}, expected (0, 1 day]")


@dataclass(eq=False)
class DekEpoch:
    """One DEK, its wraps for a fixed recipient set, and its nonce counter.

    Create with :meth:`start`; the DEK never leaves this object and is not in ``repr``.
    """

    suite: SuiteId
    sender: str
    recipients: tuple[KeyRef, ...]
    epoch_id: bytes
    wraps: tuple[bytes, ...]
    started: datetime
    policy: EpochPolicy
    _dek: bytes = field(repr=False)
    _next: int = 0

    @classmethod
    def start(
        cls,
        *,
        suite: SuiteId,
        sender: str,
        recipients: tuple[AgencyKey, ...],
        now: datetime,
        policy: EpochPolicy,
    ) -> DekEpoch:
        """Generate a DEK and epoch id and wrap the DEK to every recipient (sorted by agency).

        Raises:
            ValueError: no recipients, or a recipient key of another suite.
        """
        return cls._from_parts(
            suite=suite, sender=sender, recipients=recipients, now=now, policy=policy,
            dek=os.urandom(hazmat.DEK_LENGTH), epoch_id=os.urandom(EPOCH_ID_LENGTH),
        )  # fmt: skip

    @classmethod
    def _from_parts(
        cls,
        *,
        suite: SuiteId,
        sender: str,
        recipients: tuple[AgencyKey, ...],
        now: datetime,
        policy: EpochPolicy,
        dek: bytes,
        epoch_id: bytes,
        wrap_fn: Callable[[SuiteId, bytes, KemPublicKey, bytes], bytes] = hazmat.hpke_wrap,
    ) -> DekEpoch:
        # Deterministic path for known-answer vectors only (STYLE.md §3): never public.
        if not recipients:
            raise ValueError("got no recipients, expected at least one")
        if any(k.suite is not suite for k in recipients):
            raise ValueError(f"got a recipient key of another suite, expected {suite}")
        ordered = tuple(sorted(recipients, key=lambda k: k.agency_id))
        refs = tuple(KeyRef(k.agency_id, k.key_id) for k in ordered)
        wraps = tuple(
            wrap_fn(suite, dek, k.kem_key, wrap_info(suite, sender, ref, epoch_id))
            for k, ref in zip(ordered, refs, strict=True)
        )
        return cls(suite, sender, refs, epoch_id, wraps, now, policy, dek)

    def usable(self, now: datetime) -> bool:
        """Whether another message may use this DEK (counter and age bounds)."""
        return self._next < self.policy.max_messages and now - self.started < self.policy.max_age

    def encrypt(self, plaintext: bytes, aad: bytes, counter: int) -> bytes:
        """Encrypt message ``counter`` of this epoch (the counter came from :meth:`take`)."""
        return hazmat.aead_encrypt(self._dek, hazmat.counter_nonce(counter), plaintext, aad)

    def take(self) -> int:
        """Reserve the next nonce counter.

        Raises:
            RuntimeError: the epoch is exhausted (callers check :meth:`usable` first).
        """
        if self._next >= self.policy.max_messages:
            raise RuntimeError("DEK epoch exhausted")
        counter = self._next
        self._next += 1
        return counter


class DekCache:
    """Bounded LRU of unwrapped DEKs keyed by ``H(label || info || wrap)``.

    The key covers the HPKE ``info`` too, so a wrap copied into an envelope with another
    sender, suite or epoch misses the cache and goes back to HPKE, which then fails.
    """

    def __init__(self, max_entries: int = 256) -> None:
        if max_entries < 0:
            raise ValueError(f"got max_entries={max_entries}, expected >= 0")
        self._max = max_entries
        self._entries: OrderedDict[bytes, bytes] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"DekCache(entries={len(self._entries)}, max={self._max})"

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(suite: SuiteId, info: bytes, wrap: bytes) -> bytes:
        return hazmat.digest(SuiteId.CLASSIC, _CACHE_LABEL, hazmat.lp(suite.value.encode()),
                             hazmat.lp(info), wrap)  # fmt: skip

    def get(self, key: bytes) -> bytes | None:
        dek = self._entries.get(key)
        if dek is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return dek

    def put(self, key: bytes, dek: bytes) -> None:
        if self._max == 0:
            return
        self._entries[key] = dek
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
