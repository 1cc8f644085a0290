"""Key and trust interfaces shared by the envelope recipes and the PKI.

These are the plug points of the crypto layer (STYLE.md §7): the envelope code signs and
unwraps through a :class:`KeyProvider` (so an HSM/KMS backend can replace the encrypted-file
backend) and checks senders and recipients through a :class:`TrustResolver` (implemented by
the X.509 trust store). Neither side knows how the other is implemented.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, x25519
from cryptography.hazmat.primitives.hpke import MLKEM768X25519PublicKey

__all__ = [
    "AgencyKey",
    "KemPublicKey",
    "KeyProvider",
    "SigningPublicKey",
    "SuiteId",
    "TrustResolver",
]


class SuiteId(StrEnum):
    """Cipher suites. The id travels in the signed header; there is no negotiation."""

    #: Ed25519 + HPKE(X25519, HKDF-SHA256, AES-256-GCM)
    CLASSIC = "classic"
    #: Ed25519 AND ML-DSA-65 (both must verify) + HPKE(ML-KEM-768-X25519, HKDF-SHA256, AES-256-GCM)
    PQ_HYBRID = "pq-hybrid"
    #: ECDSA P-384/SHA-384 + HPKE(P-384, HKDF-SHA384, AES-256-GCM)
    CNSA = "cnsa"


SigningPublicKey = ed25519.Ed25519PublicKey | mldsa.MLDSA65PublicKey | ec.EllipticCurvePublicKey
KemPublicKey = x25519.X25519PublicKey | MLKEM768X25519PublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class AgencyKey:
    """One agency key generation for one suite, as vouched for by a verified certificate chain.

    Attributes:
        agency_id: ``<ISO 3166 alpha-3>-<AGENCY>``, e.g. ``MEX-FGR``.
        key_id: stable short identifier of this key generation (carried in envelope headers).
        suite: the suite these keys belong to.
        signing_keys: ``(Ed25519,)`` for classic, ``(Ed25519, ML-DSA-65)`` for pq-hybrid,
            ``(ECDSA P-384,)`` for cnsa; every one must verify.
        kem_key: the HPKE recipient public key of the suite's KEM.
        not_before: start of validity (inclusive).
        not_after: end of validity (inclusive).
        may_publish: record type names (``seizure``, ``trace-request``...) the agency may publish.
    """

    agency_id: str
    key_id: str
    suite: SuiteId
    signing_keys: tuple[SigningPublicKey, ...]
    kem_key: KemPublicKey
    not_before: datetime
    not_after: datetime
    may_publish: frozenset[str]

    @property
    def country(self) -> str:
        return self.agency_id.split("-", 1)[0]


@runtime_checkable
class TrustResolver(Protocol):
    """Answers "which key did this agency hold, and may it do this?" from verified trust data."""

    def signing_key(self, agency_id: str, key_id: str, *, at: datetime) -> AgencyKey:
        """The sender key ``key_id`` of ``agency_id``, checked valid and unrevoked at ``at``.

        Raises:
            IntegrityError: reason ``UNTRUSTED_SENDER``, ``REVOKED_KEY`` or
                ``KEY_NOT_VALID_AT_SIGNING_TIME``.
        """
        ...

    def current_key(self, agency_id: str, suite: SuiteId, *, at: datetime) -> AgencyKey:
        """The newest valid, unrevoked key of ``agency_id`` for ``suite`` (to encrypt to it).

        Raises:
            PolicyError: the agency is unknown or has no valid key for the suite.
        """
        ...

    def agencies(self) -> frozenset[str]:
        """Every enrolled agency id the trust store knows."""
        ...


@runtime_checkable
class KeyProvider(Protocol):
    """Private-key operations of one agency. Private keys never leave the provider."""

    @property
    def agency_id(self) -> str: ...

    def current_key(self, suite: SuiteId, *, at: datetime) -> AgencyKey:
        """This agency's newest key generation for ``suite`` valid at ``at``."""
        ...

    def sign(self, key_id: str, message: bytes) -> tuple[bytes, ...]:
        """Sign ``message`` with every signing key of generation ``key_id``, in suite order."""
        ...

    def hpke_open(self, key_id: str, sealed: bytes, *, info: bytes) -> bytes:
        """Open an HPKE single-shot ciphertext (``enc || ct``) addressed to ``key_id``.

        Raises:
            IntegrityError: reason ``BAD_KEY_WRAP`` for any failure.
        """
        ...
