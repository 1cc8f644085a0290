"""In-memory test doubles of :class:`KeyProvider` and :class:`TrustResolver`.

Shipped as API (STYLE.md §9, like ``httpx.MockTransport``) so the envelope tests, the vector
generator, the benchmarks and other packages' unit tests share one faithful double instead of
mocks. Not for production: keys live in process memory, unencrypted.

Example::

    >>> from exchange.crypto.testing import InMemoryAgency, InMemoryTrust
    >>> mex, usa = InMemoryAgency.generate("MEX-FGR"), InMemoryAgency.generate("USA-ATF")
    >>> trust = InMemoryTrust.of(mex, usa)
    >>> sorted(trust.agencies())
    ['MEX-FGR', 'USA-ATF']
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, x25519
from cryptography.hazmat.primitives.hpke import MLKEM768X25519PrivateKey

from exchange.crypto.keys import AgencyKey, SuiteId
from exchange.crypto.suites import suite_info
from exchange.errors import IntegrityError, IntegrityReason, PolicyError

__all__ = ["ALL_RECORD_TYPES", "InMemoryAgency", "InMemoryTrust"]

ALL_RECORD_TYPES = frozenset({"seizure", "trace-request", "trace-response", "ballistic", "intel"})
_FAR_PAST = datetime(2020, 1, 1, tzinfo=UTC)
_FAR_FUTURE = datetime(2040, 1, 1, tzinfo=UTC)
_P384_ORDER = int(
    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    16,
)


def _derive(seed: bytes, label: str, n: int = 32) -> bytes:
    return hashlib.shake_256(seed + b"\x00" + label.encode()).digest(n)


def _keys_from_material(
    suite: SuiteId, material: dict[str, list[str]]
) -> tuple[tuple[Any, ...], Any, tuple[Any, ...]]:
    sig = [bytes.fromhex(x) for x in material["signing"]]
    kem = [bytes.fromhex(x) for x in material["kem"]]
    if suite is SuiteId.CNSA:
        p384 = ec.derive_private_key(int.from_bytes(kem[0], "big"), ec.SECP384R1())
        return (
            (ec.derive_private_key(int.from_bytes(sig[0], "big"), ec.SECP384R1()),),
            p384,
            (p384,),
        )
    signing: tuple[Any, ...] = (ed25519.Ed25519PrivateKey.from_private_bytes(sig[0]),)
    if suite is SuiteId.CLASSIC:
        x = x25519.X25519PrivateKey.from_private_bytes(kem[0])
        return signing, x, (x,)
    signing += (mldsa.MLDSA65PrivateKey.from_seed_bytes(sig[1]),)
    m = mlkem.MLKEM768PrivateKey.from_seed_bytes(kem[0])
    x = x25519.X25519PrivateKey.from_private_bytes(kem[1])
    return signing, MLKEM768X25519PrivateKey(m, x), (m, x)


@dataclass
class _Generation:
    public: AgencyKey
    signing: tuple[Any, ...] = field(repr=False)
    kem: Any = field(repr=False)
    kem_parts: tuple[Any, ...] = field(repr=False, default=())


class InMemoryAgency:
    """A :class:`~exchange.crypto.keys.KeyProvider` holding key generations in memory.

    Args:
        agency_id: ``CCC-AGENCY``.
        deterministic: sign ECDSA deterministically (RFC 6979), for known-answer vectors.
    """

    def __init__(self, agency_id: str, *, deterministic: bool = False) -> None:
        self._agency_id = agency_id
        self._gens: dict[str, _Generation] = {}
        self._deterministic = deterministic

    def __repr__(self) -> str:
        return f"InMemoryAgency({self._agency_id!r}, generations={sorted(self._gens)})"

    @classmethod
    def generate(
        cls,
        agency_id: str,
        suites: Iterable[SuiteId] = tuple(SuiteId),
        *,
        may_publish: frozenset[str] = ALL_RECORD_TYPES,
        seed: bytes | None = None,
    ) -> InMemoryAgency:
        """An agency with one key generation per suite (deterministic if ``seed`` is given)."""
        agency = cls(agency_id, deterministic=seed is not None)
        for suite in suites:
            agency.add_generation(suite, may_publish=may_publish, seed=seed)
        return agency

    @property
    def agency_id(self) -> str:
        return self._agency_id

    def add_generation(
        self,
        suite: SuiteId,
        *,
        key_id: str | None = None,
        not_before: datetime = _FAR_PAST,
        not_after: datetime = _FAR_FUTURE,
        may_publish: frozenset[str] = ALL_RECORD_TYPES,
        seed: bytes | None = None,
        material: dict[str, list[str]] | None = None,
    ) -> AgencyKey:
        """Create a key generation for ``suite``.

        Args:
            seed: derive the keys reproducibly from this seed.
            material: use exactly these private keys (the format of
                :meth:`unsafe_private_material`), e.g. from published test vectors.
        """
        key_id = (
            key_id
            or f"{suite.value}-{1 + sum(g.public.suite is suite for g in self._gens.values())}"
        )
        if material is None:
            s = (seed or b"") + self._agency_id.encode() + b"/" + key_id.encode()

            def rnd(label: str, n: int = 32) -> str:
                return (_derive(s, label, n) if seed is not None else os.urandom(n)).hex()

            def scalar(label: str) -> str:
                return f"{int(rnd(label, 64), 16) % (_P384_ORDER - 1) + 1:096x}"

            material = {
                SuiteId.CLASSIC: {"signing": [rnd("ed25519")], "kem": [rnd("x25519")]},
                SuiteId.PQ_HYBRID: {
                    "signing": [rnd("ed25519"), rnd("mldsa65")],
                    "kem": [rnd("mlkem768", 64), rnd("x25519")],
                },
                SuiteId.CNSA: {"signing": [scalar("sig")], "kem": [scalar("kem")]},
            }[suite]
        signing, kem, kem_parts = _keys_from_material(suite, material)
        public = AgencyKey(
            agency_id=self._agency_id,
            key_id=key_id,
            suite=suite,
            signing_keys=tuple(k.public_key() for k in signing),
            kem_key=kem.public_key(),
            not_before=not_before,
            not_after=not_after,
            may_publish=frozenset(may_publish),
        )
        self._gens[key_id] = _Generation(public, signing, kem, kem_parts)
        return public

    def public_keys(self) -> tuple[AgencyKey, ...]:
        """Every public key generation (to enroll in an :class:`InMemoryTrust`)."""
        return tuple(g.public for g in self._gens.values())

    def unsafe_private_material(self, key_id: str) -> dict[str, list[str]]:
        """Raw private keys of one generation, hex, for published known-answer vectors only.

        Ed25519 and X25519 raw 32 bytes; ML-DSA-65 and ML-KEM-768 seeds (32 and 64 bytes,
        FIPS 204/203); P-384 big-endian 48-byte scalars. X-Wing lists ML-KEM then X25519.
        """
        gen = self._gens[key_id]

        def raw(key: Any) -> str:
            if isinstance(key, ec.EllipticCurvePrivateKey):
                return f"{key.private_numbers().private_value:096x}"
            return bytes(key.private_bytes_raw()).hex()

        return {"signing": [raw(k) for k in gen.signing], "kem": [raw(k) for k in gen.kem_parts]}

    def current_key(self, suite: SuiteId, *, at: datetime) -> AgencyKey:
        valid = [
            g.public
            for g in self._gens.values()
            if g.public.suite is suite and g.public.not_before <= at <= g.public.not_after
        ]
        if not valid:
            raise PolicyError(f"{self._agency_id} holds no {suite} key valid at {at:%Y-%m-%d}")
        return max(valid, key=lambda k: k.not_before)

    def sign(self, key_id: str, message: bytes) -> tuple[bytes, ...]:
        gen = self._gens[key_id]
        out: list[bytes] = []
        for key in gen.signing:
            if isinstance(key, ec.EllipticCurvePrivateKey):
                algo = ec.ECDSA(hashes.SHA384(), deterministic_signing=self._deterministic)
                out.append(key.sign(message, algo))
            else:
                out.append(key.sign(message))
        return tuple(out)

    def hpke_open(self, key_id: str, sealed: bytes, *, info: bytes) -> bytes:
        gen = self._gens.get(key_id)
        if gen is None:
            raise IntegrityError(IntegrityReason.BAD_KEY_WRAP)
        try:
            return suite_info(gen.public.suite).hpke_suite().decrypt(sealed, gen.kem, info)
        except Exception:  # noqa: BLE001 - any HPKE failure is one opaque reason
            raise IntegrityError(IntegrityReason.BAD_KEY_WRAP) from None


class InMemoryTrust:
    """A :class:`~exchange.crypto.keys.TrustResolver` over enrolled public keys.

    Validity windows come from each :class:`AgencyKey`; :meth:`revoke` marks a key revoked
    from a point in time (messages signed before it still verify, as with a CRL's
    revocation date).
    """

    def __init__(self, keys: Iterable[AgencyKey] = ()) -> None:
        self._keys: dict[tuple[str, str], AgencyKey] = {}
        self._revoked: dict[tuple[str, str], datetime] = {}
        for key in keys:
            self.enroll(key)

    @classmethod
    def of(cls, *agencies: InMemoryAgency) -> InMemoryTrust:
        """Trust every key generation of ``agencies``."""
        return cls(k for a in agencies for k in a.public_keys())

    def enroll(self, key: AgencyKey) -> None:
        self._keys[(key.agency_id, key.key_id)] = key

    def revoke(self, agency_id: str, key_id: str, *, at: datetime) -> None:
        self._revoked[(agency_id, key_id)] = at

    def signing_key(self, agency_id: str, key_id: str, *, at: datetime) -> AgencyKey:
        key = self._keys.get((agency_id, key_id))
        if key is None:
            raise IntegrityError(IntegrityReason.UNTRUSTED_SENDER)
        revoked = self._revoked.get((agency_id, key_id))
        if revoked is not None and at >= revoked:
            raise IntegrityError(IntegrityReason.REVOKED_KEY)
        if not key.not_before <= at <= key.not_after:
            raise IntegrityError(IntegrityReason.KEY_NOT_VALID_AT_SIGNING_TIME)
        return key

    def current_key(self, agency_id: str, suite: SuiteId, *, at: datetime) -> AgencyKey:
        valid = [
            k
            for (a, _), k in self._keys.items()
            if a == agency_id
            and k.suite is suite
            and k.not_before <= at <= k.not_after
            and not ((a, k.key_id) in self._revoked and at >= self._revoked[(a, k.key_id)])
        ]
        if not valid:
            raise PolicyError(f"{agency_id} has no valid {suite} key")
        return max(valid, key=lambda k: k.not_before)

    def agencies(self) -> frozenset[str]:
        return frozenset(a for a, _ in self._keys)
