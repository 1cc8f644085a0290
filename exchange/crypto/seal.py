"""Producer side: build signed headers, encrypt under an epoch DEK, sign a batch root.

Implementation of :func:`exchange.crypto.seal` and :class:`exchange.crypto.Sealer`
(unstable module; import from :mod:`exchange.crypto`).
"""

from __future__ import annotations

import os
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from exchange.crypto import hazmat
from exchange.crypto.dek import DekEpoch, EpochPolicy
from exchange.crypto.envelope import (
    MAX_BATCH,
    MAX_ENVELOPE,
    MAX_RECIPIENTS,
    BatchSeal,
    RawEnvelope,
    aad,
    commitment,
    encode_envelope,
    root_message,
    signing_digest,
)
from exchange.crypto.header import (
    ENVELOPE_VERSION,
    MAX_VALIDITY_US,
    DerivedFrom,
    EnvelopeHeader,
    KeyRef,
    ProducerRef,
    check_identifier,
    encode_header,
    to_micros,
)
from exchange.crypto.keys import AgencyKey, KemPublicKey, KeyProvider, SuiteId, TrustResolver
from exchange.crypto.merkle import leaf_hash, root_and_paths
from exchange.crypto.suites import suite_info
from exchange.errors import PolicyError
from exchange.policy import HandlingSummary, check_addressing

__all__ = ["DEFAULT_TTL", "MAX_TTL", "Sealer"]

DEFAULT_TTL = timedelta(days=7)
MAX_TTL = timedelta(microseconds=MAX_VALIDITY_US)  # readers refuse longer validity
SALT_LENGTH = 32
_MAX_OPEN_EPOCHS = 64

WrapFn = Callable[[SuiteId, bytes, KemPublicKey, bytes], bytes]


@dataclass(frozen=True)
class _Leaf:
    header: EnvelopeHeader
    header_bytes: bytes
    wraps: tuple[bytes, ...]
    ciphertext: bytes
    digest: bytes


class Sealer:
    """Seals messages for one sending agency and suite, reusing DEK epochs across messages.

    Args:
        sender: the agency's private-key provider.
        trust: resolves recipients' current KEM keys.
        suite: the suite of every envelope this sealer makes.
        producer_id: stable id of this producer process (default: random per sealer).
        producer_epoch: producer epoch (default: creation time in microseconds, so a restart
            starts a higher epoch and sequence numbers never go backwards).
        epoch_policy: DEK epoch bounds; ``EpochPolicy(max_messages=1)`` disables reuse.
        ttl: default validity of each envelope, at most :data:`MAX_TTL`.
        clock: injectable clock returning an aware UTC datetime.

    Not thread-safe: use one sealer per producer thread (each has its own producer id).

    Example::

        sealer = Sealer(provider, trust, suite=SuiteId.PQ_HYBRID)
        blob = sealer.seal(avro_bytes, recipients=["USA-ATF"], record_type="seizure", ...)
    """

    def __init__(
        self,
        sender: KeyProvider,
        trust: TrustResolver,
        *,
        suite: SuiteId,
        producer_id: str | None = None,
        producer_epoch: int | None = None,
        epoch_policy: EpochPolicy | None = None,
        ttl: timedelta = DEFAULT_TTL,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not timedelta(0) < ttl <= MAX_TTL:
            raise ValueError(f"got ttl={ttl}, expected (0, {MAX_TTL}]")
        self._sender = sender
        self._trust = trust
        self._suite = SuiteId(suite)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._ttl = ttl
        self._policy = epoch_policy or EpochPolicy()
        self._randbytes: Callable[[int], bytes] = os.urandom
        self._wrap: WrapFn = hazmat.hpke_wrap
        self._producer_id = producer_id or f"{sender.agency_id}/{uuid.uuid4()}"
        check_identifier(self._producer_id)
        self._producer_epoch = (
            to_micros(self._clock()) if producer_epoch is None else producer_epoch
        )
        self._sequence = 0
        self._epochs: OrderedDict[tuple[KeyRef, ...], DekEpoch] = OrderedDict()

    @property
    def suite(self) -> SuiteId:
        return self._suite

    def seal(
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
    ) -> bytes:
        """Seal one message as a batch of one (see :func:`exchange.crypto.seal`)."""
        leaf = self._prepare(
            plaintext, recipients=recipients, record_type=record_type,
            schema_fingerprint=schema_fingerprint, handling=handling, topic=topic,
            provenance=provenance, ttl=ttl, now=now,
        )  # fmt: skip
        return self._finish([leaf])[0]

    def _sender_key(self, now: datetime, record_type: str) -> AgencyKey:
        key = self._sender.current_key(self._suite, at=now)
        if key.suite is not self._suite or key.agency_id != self._sender.agency_id:
            raise PolicyError(f"{self._sender.agency_id} has no {self._suite} key")
        if record_type not in key.may_publish:
            raise PolicyError(f"{key.agency_id} may not publish {record_type!r} records")
        return key

    def _epoch(self, recipients: tuple[AgencyKey, ...], now: datetime) -> DekEpoch:
        refs = tuple(sorted(KeyRef(k.agency_id, k.key_id) for k in recipients))
        for stale in [r for r, e in self._epochs.items() if not e.usable(now)]:
            del self._epochs[stale]  # the DEK dies with its epoch, used again or not
        epoch = self._epochs.get(refs)
        if epoch is None:
            epoch = DekEpoch._from_parts(
                suite=self._suite, sender=self._sender.agency_id, recipients=recipients,
                now=now, policy=self._policy, dek=self._randbytes(hazmat.DEK_LENGTH),
                epoch_id=self._randbytes(16), wrap_fn=self._wrap,
            )  # fmt: skip
            self._epochs[refs] = epoch
        self._epochs.move_to_end(refs)
        while len(self._epochs) > _MAX_OPEN_EPOCHS:
            self._epochs.popitem(last=False)  # the DEK dies with its epoch
        return epoch

    def _prepare(
        self,
        plaintext: bytes,
        *,
        recipients: Iterable[str],
        record_type: str,
        schema_fingerprint: bytes,
        handling: HandlingSummary,
        topic: str,
        provenance: Iterable[DerivedFrom],
        ttl: timedelta | None,
        now: datetime | None,
    ) -> _Leaf:
        now = now or self._clock()  # "now" is captured once per operation (STYLE.md §3)
        ttl = self._ttl if ttl is None else ttl
        if not timedelta(0) < ttl <= MAX_TTL:
            raise ValueError(f"got ttl={ttl}, expected (0, {MAX_TTL}]")
        check_identifier(topic, topic=True)
        check_identifier(record_type)
        if len(schema_fingerprint) != 32:
            raise ValueError("got a schema fingerprint that is not 32 bytes (SHA-256)")
        if len(plaintext) > MAX_ENVELOPE - (64 << 10):
            raise ValueError(f"got {len(plaintext)} plaintext bytes, expected < 960 KiB")
        agencies = sorted(set(recipients))
        if len(agencies) > MAX_RECIPIENTS:
            raise ValueError(f"got {len(agencies)} recipients, expected <= {MAX_RECIPIENTS}")
        sender_key = self._sender_key(now, record_type)
        check_addressing(handling, sender=sender_key.agency_id, recipients=agencies)
        keys = tuple(self._trust.current_key(a, self._suite, at=now) for a in agencies)
        epoch = self._epoch(keys, now)
        counter = epoch.take()
        salt = self._randbytes(SALT_LENGTH)
        header = EnvelopeHeader(
            version=ENVELOPE_VERSION,
            suite=self._suite,
            message_id=uuid.UUID(bytes=self._randbytes(16), version=4),
            sender=KeyRef(sender_key.agency_id, sender_key.key_id),
            producer=ProducerRef(self._producer_id, self._producer_epoch, self._sequence),
            created_us=to_micros(now),
            expires_us=to_micros(now + ttl),
            topic=topic,
            record_type=record_type,
            schema_fingerprint=schema_fingerprint,
            handling=handling,
            provenance=tuple(provenance),
            recipients=epoch.recipients,
            dek_epoch=epoch.epoch_id,
            nonce_counter=counter,
            commitment=commitment(self._suite, salt, plaintext),
        )
        self._sequence += 1
        header_bytes = encode_header(header)
        ct = epoch.encrypt(salt + plaintext, aad(self._suite, header_bytes), counter)
        digest = signing_digest(self._suite, header_bytes, epoch.wraps, ct)
        return _Leaf(header, header_bytes, epoch.wraps, ct, digest)

    def _finish(self, leaves: list[_Leaf]) -> list[bytes]:
        """Sign the Merkle root over ``leaves`` once and frame every envelope."""
        if not 1 <= len(leaves) <= MAX_BATCH:
            raise ValueError(f"got a batch of {len(leaves)}, expected 1..{MAX_BATCH}")
        info = suite_info(self._suite)
        senders = {leaf.header.sender for leaf in leaves}
        if len(senders) != 1:
            raise RuntimeError("a batch spans two sender keys; flush before rotating keys")
        (sender,) = senders
        hashed = [leaf_hash(info.hash_factory, leaf.digest) for leaf in leaves]
        root, paths = root_and_paths(info.hash_factory, hashed)
        signatures = self._sender.sign(sender.key_id, root_message(self._suite, len(leaves), root))
        if len(signatures) != len(info.signatures) or any(
            len(sig) > alg.max_length for alg, sig in zip(info.signatures, signatures, strict=True)
        ):
            raise RuntimeError(
                f"the key provider returned signatures that do not fit {self._suite}"
            )
        out = []
        for i, leaf in enumerate(leaves):
            seal = BatchSeal(len(leaves), i, tuple(paths[i]), tuple(signatures))
            out.append(
                encode_envelope(RawEnvelope(leaf.header_bytes, leaf.wraps, leaf.ciphertext, seal))
            )
        return out
