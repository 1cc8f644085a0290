"""Consumer and auditor side: verify an envelope, then (recipients only) open it.

Implementation of :func:`exchange.crypto.verify`, :func:`exchange.crypto.open` and
:class:`exchange.crypto.Opener` (unstable module; import from :mod:`exchange.crypto`).
Order of checks (docs/envelope.md, "Verification"): bounds -> framing -> header -> suite ->
sender key at created time -> inclusion path + root signature -> publishing right -> time ->
handling -> (open) recipient -> unwrap -> decrypt -> commitment. Nothing is decrypted, parsed
further or returned before the signature has verified.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from exchange.crypto import hazmat
from exchange.crypto._avro import AvroFormatError
from exchange.crypto.dek import DekCache
from exchange.crypto.envelope import (
    RawEnvelope,
    UnknownWireVersionError,
    aad,
    commitment,
    decode_envelope,
    header_suite_ok,
    root_message,
    signing_digest,
    wrap_info,
)
from exchange.crypto.header import (
    EnvelopeHeader,
    UnknownValueError,
    decode_header,
    to_micros,
)
from exchange.crypto.keys import AgencyKey, KeyProvider, SuiteId, TrustResolver
from exchange.crypto.merkle import leaf_hash, root_from_path
from exchange.crypto.results import OpenedEnvelope, VerifiedEnvelope
from exchange.crypto.seal import SALT_LENGTH
from exchange.crypto.suites import suite_info
from exchange.errors import IntegrityError, IntegrityReason, PolicyError
from exchange.policy import check_addressing, check_release

__all__ = [
    "DEFAULT_SKEW",
    "MAX_SKEW",
    "OpenedEnvelope",
    "Opener",
    "VerifiedEnvelope",
    "VerifiedForOpening",
]


logger = logging.getLogger(__name__)
DEFAULT_SKEW = timedelta(minutes=5)
MAX_SKEW = timedelta(minutes=15)
R = IntegrityReason


def _fail(reason: IntegrityReason) -> IntegrityError:
    # The reason goes to the exception attribute and a debug log only (STYLE.md §3).
    logger.debug("envelope rejected: %s", reason.value)
    return IntegrityError(reason)


class VerifiedForOpening:
    """An envelope :meth:`Opener.verify_for_opening` verified, not yet opened.

    Only an :class:`Opener` makes one and only the same opener opens it; it holds the parsed
    bytes that were verified, so opening cannot be pointed at other bytes.

    Attributes:
        verified: the verified header, sender key and digests.
    """

    __slots__ = ("_opener", "_raw", "verified")

    def __init__(self, verified: VerifiedEnvelope, raw: RawEnvelope, opener: Opener) -> None:
        self.verified = verified
        self._raw = raw
        self._opener = opener

    def __repr__(self) -> str:
        return f"VerifiedForOpening({self.verified.message_id})"


class Opener:
    """Verifies and opens envelopes, caching verified roots and unwrapped DEKs (bounded LRU).

    Args:
        trust: resolves sender keys at their signing time.
        recipient: this agency's private-key provider; ``None`` for an auditor (verify only).
        accept_suites: suites this consumer accepts (default all); others are refused as
            ``SUITE_MISMATCH`` so a consumer can require pq-hybrid.
        skew: tolerated clock difference for created/expires, at most :data:`MAX_SKEW`.
        root_cache_size / dek_cache_size: LRU bounds (0 disables a cache).
        clock: injectable clock returning an aware datetime.
    """

    def __init__(
        self,
        trust: TrustResolver,
        *,
        recipient: KeyProvider | None = None,
        accept_suites: frozenset[SuiteId] | None = None,
        skew: timedelta = DEFAULT_SKEW,
        root_cache_size: int = 1024,
        dek_cache_size: int = 256,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not timedelta(0) <= skew <= MAX_SKEW:
            raise ValueError(f"got skew={skew}, expected [0, {MAX_SKEW}]")
        self._trust = trust
        self._recipient = recipient
        self._suites = frozenset(SuiteId) if accept_suites is None else accept_suites
        self._skew = skew
        self._clock = clock or (lambda: datetime.now(UTC))
        self._roots: OrderedDict[bytes, None] = OrderedDict()
        self._root_max = root_cache_size
        self.deks = DekCache(dek_cache_size)

    def __repr__(self) -> str:
        who = self._recipient.agency_id if self._recipient else "auditor"
        return f"Opener({who}, roots={len(self._roots)}, {self.deks!r})"

    def verify(self, envelope: bytes, *, now: datetime | None = None) -> VerifiedEnvelope:
        """Verify ``envelope`` without any private key.

        Args:
            envelope: the untrusted envelope bytes.
            now: the verification time (default: the opener's clock), captured once.

        Returns:
            The verified header, sender key and digests.

        Raises:
            IntegrityError: any integrity, trust, time or handling failure (see ``.reason``).
        """
        return self._verify(envelope, now or self._clock())[0]

    def open(self, envelope: bytes, *, now: datetime | None = None) -> OpenedEnvelope:
        """Verify ``envelope``, check this agency is a recipient and may read it, decrypt it.

        Args:
            envelope: the untrusted envelope bytes.
            now: the verification time (default: the opener's clock), captured once.

        Returns:
            The verified header, the plaintext Avro bytes and the commitment salt.

        Raises:
            IntegrityError: as :meth:`verify`, plus ``NOT_A_RECIPIENT``, ``HANDLING_VIOLATION``,
                ``BAD_KEY_WRAP``, ``DECRYPTION_FAILED``, ``COMMITMENT_MISMATCH``.
            TypeError: the opener was built without a recipient key provider.
        """
        self._need_recipient()
        return self._open_checked(*self._verify(envelope, now or self._clock()))

    def verify_for_opening(
        self, envelope: bytes, *, now: datetime | None = None
    ) -> VerifiedForOpening:
        """Verify ``envelope`` as :meth:`verify` does, keeping what :meth:`open_verified`
        needs so that a consumer that acts on the verified header first (topic binding, "is it
        addressed to me?") does not decode and verify the same bytes a second time.

        Args:
            envelope: the untrusted envelope bytes.
            now: the verification time (default: the opener's clock), captured once.

        Returns:
            The verified envelope (``.verified``), to open with :meth:`open_verified` of this
            same opener.

        Raises:
            IntegrityError: any failure :meth:`verify` reports.
        """
        verified, raw = self._verify(envelope, now or self._clock())
        return VerifiedForOpening(verified, raw, self)

    def open_verified(self, checked: VerifiedForOpening) -> OpenedEnvelope:
        """Open what :meth:`verify_for_opening` of this opener verified: the recipient,
        release, unwrap, decrypt and commitment steps of :meth:`open`, on the bytes that were
        verified (the result carries them; nothing can be swapped in between).

        Raises:
            IntegrityError: ``NOT_A_RECIPIENT``, ``HANDLING_VIOLATION``, ``BAD_KEY_WRAP``,
                ``DECRYPTION_FAILED``, ``COMMITMENT_MISMATCH``.
            TypeError: no recipient key provider, or ``checked`` came from another opener
                (whose trust store, suites or clock may differ).
        """
        self._need_recipient()
        if not isinstance(checked, VerifiedForOpening) or checked._opener is not self:
            raise TypeError("got a result of another Opener, expected this one's")
        return self._open_checked(checked.verified, checked._raw)

    def _need_recipient(self) -> None:
        if self._recipient is None:
            raise TypeError("open() needs Opener(recipient=...); auditors use verify()")

    def _open_checked(self, verified: VerifiedEnvelope, raw: RawEnvelope) -> OpenedEnvelope:
        # Only ever called with the pair _verify returned for the same bytes.
        if self._recipient is None:  # pragma: no cover - callers checked it
            raise TypeError("no recipient key provider")
        h = verified.header
        me = h.recipient_key(self._recipient.agency_id)
        if me is None:
            raise _fail(R.NOT_A_RECIPIENT)  # never try to decrypt what is not ours
        try:
            check_release(h.handling, self._recipient.agency_id)
        except PolicyError:
            raise _fail(R.HANDLING_VIOLATION) from None
        wrap = raw.wraps[h.recipients.index(me)]
        info = wrap_info(h.suite, h.sender.agency_id, me, h.dek_epoch)
        cache_key = DekCache.key(h.suite, info, wrap)
        dek = self.deks.get(cache_key)
        if dek is None:
            dek = self._unwrap(me.key_id, wrap, info)
            self.deks.put(cache_key, dek)
        nonce = hazmat.counter_nonce(h.nonce_counter)
        padded = hazmat.aead_decrypt(dek, nonce, raw.ciphertext, aad(h.suite, raw.header_bytes))
        if padded is None or len(padded) < SALT_LENGTH:
            raise _fail(R.DECRYPTION_FAILED)
        salt, plaintext = padded[:SALT_LENGTH], padded[SALT_LENGTH:]
        if not hazmat.equal(commitment(h.suite, salt, plaintext), h.commitment):
            raise _fail(R.COMMITMENT_MISMATCH)
        return OpenedEnvelope(verified, plaintext, salt)

    def _unwrap(self, key_id: str, wrap: bytes, info: bytes) -> bytes:
        if self._recipient is None:  # pragma: no cover - open() checked it
            raise TypeError("no recipient key provider")
        try:
            dek = self._recipient.hpke_open(key_id, wrap, info=info)
        except (IntegrityError, ValueError, KeyError):
            raise _fail(R.BAD_KEY_WRAP) from None
        # ConfigurationError / InfrastructureError (key store locked, HSM down) propagate:
        # a local fault must alert the operator, not quarantine valid messages as hostile.
        if len(dek) != hazmat.DEK_LENGTH:
            raise _fail(R.BAD_KEY_WRAP)
        return dek

    def _decode(self, envelope: bytes) -> tuple[RawEnvelope, EnvelopeHeader]:
        if not isinstance(envelope, bytes):
            raise TypeError(f"got {type(envelope).__name__}, expected bytes")
        try:
            raw = decode_envelope(envelope)
            header = decode_header(raw.header_bytes)
        except UnknownWireVersionError:
            raise _fail(R.UNKNOWN_VERSION) from None
        except UnknownValueError as exc:
            raise _fail(R.UNKNOWN_VERSION if exc.what == "version" else R.UNKNOWN_SUITE) from None
        except AvroFormatError as exc:
            raise _fail(R.OVERSIZED if exc.oversized else R.MALFORMED) from None
        if not header_suite_ok(header, raw):
            raise _fail(R.MALFORMED)
        return raw, header

    def _sender_key(self, header: EnvelopeHeader) -> AgencyKey:
        try:
            key = self._trust.signing_key(
                header.sender.agency_id, header.sender.key_id, at=header.created_at
            )
        except IntegrityError as exc:
            raise _fail(exc.reason) from None
        except (PolicyError, KeyError, ValueError):
            raise _fail(R.UNTRUSTED_SENDER) from None
        if key.agency_id != header.sender.agency_id or key.key_id != header.sender.key_id:
            raise _fail(R.UNTRUSTED_SENDER)
        # No negotiation, no downgrade: the header's suite must be the sender key's suite.
        if key.suite is not header.suite or header.suite not in self._suites:
            raise _fail(R.SUITE_MISMATCH)
        if not key.not_before <= header.created_at <= key.not_after:
            raise _fail(R.KEY_NOT_VALID_AT_SIGNING_TIME)
        return key

    def _verify(self, envelope: bytes, now: datetime) -> tuple[VerifiedEnvelope, RawEnvelope]:
        raw, h = self._decode(envelope)
        key = self._sender_key(h)
        info = suite_info(h.suite)
        digest = signing_digest(h.suite, raw.header_bytes, raw.wraps, raw.ciphertext)
        s = raw.seal
        root = root_from_path(
            info.hash_factory, leaf_hash(info.hash_factory, digest), s.leaf_index,
            s.batch_size, s.path,
        )  # fmt: skip
        if root is None:
            raise _fail(R.BAD_INCLUSION_PROOF)
        message = root_message(h.suite, s.batch_size, root)
        # The cache key covers the key generation, the signed message and the signature bytes:
        # a flipped signature byte misses the cache and is verified (and rejected).
        cache_key = hazmat.digest(
            h.suite, b"exchange/envelope/v1/root-cache", hazmat.lp(h.sender.agency_id.encode()),
            hazmat.lp(h.sender.key_id.encode()), message, *(hazmat.lp(x) for x in s.signatures),
        )  # fmt: skip
        if cache_key in self._roots:
            self._roots.move_to_end(cache_key)
        elif hazmat.verify_signatures(key, message, s.signatures):
            if self._root_max:
                self._roots[cache_key] = None
                while len(self._roots) > self._root_max:
                    self._roots.popitem(last=False)
        else:
            raise _fail(R.BAD_SIGNATURE)
        # Authenticated from here on: act on the header.
        if h.record_type not in key.may_publish:
            raise _fail(R.SENDER_NOT_AUTHORIZED)
        now_us = to_micros(now)
        skew_us = self._skew // timedelta(microseconds=1)
        if h.created_us > now_us + skew_us:
            raise _fail(R.NOT_YET_VALID)
        if now_us > h.expires_us + skew_us:
            raise _fail(R.EXPIRED)
        try:
            check_addressing(
                h.handling,
                sender=h.sender.agency_id,
                recipients=[r.agency_id for r in h.recipients],
            )
        except PolicyError:
            raise _fail(R.HANDLING_VIOLATION) from None
        verified = VerifiedEnvelope(
            h, key, digest, root, s.batch_size, s.leaf_index, aad(h.suite, raw.header_bytes)
        )
        return verified, raw
