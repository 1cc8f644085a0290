"""The one table that maps a suite to its algorithms.

Both the PKI (which generates and certifies keys) and the envelope recipes (which sign, verify
and wrap) import from here, so a suite can never mean two different things in two places.

=========  ==========================  ==================================================
suite      signatures (all must pass)  HPKE (RFC 9180) KEM / KDF / AEAD
=========  ==========================  ==================================================
classic    Ed25519                     X25519 / HKDF-SHA256 / AES-256-GCM
pq-hybrid  Ed25519, ML-DSA-65          ML-KEM-768-X25519 (X-Wing) / HKDF-SHA256 / AES-256-GCM
cnsa       ECDSA P-384 with SHA-384    P-384 / HKDF-SHA384 / AES-256-GCM
=========  ==========================  ==================================================

Signature encodings: Ed25519 raw 64 bytes; ML-DSA-65 raw (FIPS 204, empty context); ECDSA DER.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import MappingProxyType
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa

from exchange.crypto.keys import AgencyKey, SigningPublicKey, SuiteId

__all__ = [
    "ALL_SUITES",
    "SigningPrivateKey",
    "hpke_suite",
    "root_suite_for_key",
    "sign_with",
    "signing_algorithms",
    "verify_signatures",
]

_log = logging.getLogger(__name__)

#: Every suite, in the order the CLI and the docs list them.
ALL_SUITES: Final = (SuiteId.CLASSIC, SuiteId.PQ_HYBRID, SuiteId.CNSA)

SigningPrivateKey = ed25519.Ed25519PrivateKey | mldsa.MLDSA65PrivateKey | ec.EllipticCurvePrivateKey

_HPKE: Final = MappingProxyType(
    {
        SuiteId.CLASSIC: (hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
        SuiteId.PQ_HYBRID: (hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
        SuiteId.CNSA: (hpke.KEM.P384, hpke.KDF.HKDF_SHA384, hpke.AEAD.AES_256_GCM),
    }
)

#: Signing algorithm names in signature order (also used in docs, the CLI and key file names).
_SIGNING: Final = MappingProxyType(
    {
        SuiteId.CLASSIC: ("ed25519",),
        SuiteId.PQ_HYBRID: ("ed25519", "mldsa65"),
        SuiteId.CNSA: ("p384",),
    }
)


#: (min, max) wire length of each signature algorithm, checked before any verification.
_SIGNATURE_LENGTHS: Final = MappingProxyType(
    {"ed25519": (64, 64), "mldsa65": (3309, 3309), "p384": (8, 104)}
)


def hpke_suite(suite: SuiteId) -> hpke.Suite:
    """The HPKE suite that wraps DEKs for ``suite``.

    Args:
        suite: the envelope suite.

    Returns:
        A fresh :class:`cryptography.hazmat.primitives.hpke.Suite`.

    Raises:
        ValueError: ``suite`` is not a known :class:`SuiteId`.
    """
    try:
        kem, kdf, aead = _HPKE[SuiteId(suite)]
    except (KeyError, ValueError):
        raise ValueError(
            f"got suite {suite!r}, expected one of {[s.value for s in ALL_SUITES]}"
        ) from None
    return hpke.Suite(kem, kdf, aead)


def signing_algorithms(suite: SuiteId) -> tuple[str, ...]:
    """Names of the signing algorithms of ``suite``, in signature order."""
    return _SIGNING[SuiteId(suite)]


def root_suite_for_key(key: object) -> SuiteId | None:
    """The suite family a root CA key serves, from its type: the chain stays in one family.

    Ed25519 roots certify ``classic`` agencies, ML-DSA-65 roots ``pq-hybrid`` agencies (so the
    chain itself is post-quantum), P-384 roots ``cnsa`` agencies. Anything else is no root of ours.
    """
    if isinstance(key, ed25519.Ed25519PublicKey):
        return SuiteId.CLASSIC
    if isinstance(key, mldsa.MLDSA65PublicKey):
        return SuiteId.PQ_HYBRID
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP384R1):
        return SuiteId.CNSA
    return None


def sign_with(keys: Sequence[SigningPrivateKey], message: bytes) -> tuple[bytes, ...]:
    """Sign ``message`` with each key, in order (the suite order of a key generation).

    Args:
        keys: the private signing keys of one generation, in suite order.
        message: the bytes to sign.

    Returns:
        One signature per key.

    Raises:
        TypeError: a key is of an unsupported type or curve.
    """
    signatures: list[bytes] = []
    for key in keys:
        if isinstance(key, ed25519.Ed25519PrivateKey | mldsa.MLDSA65PrivateKey):
            signatures.append(key.sign(message))
        elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP384R1):
            signatures.append(key.sign(message, ec.ECDSA(hashes.SHA384())))
        else:
            raise TypeError(
                f"got signing key {type(key).__name__}, expected Ed25519, ML-DSA-65 or P-384"
            )
    return tuple(signatures)


def _verify_one(key: SigningPublicKey, signature: bytes, message: bytes) -> None:
    if isinstance(key, ed25519.Ed25519PublicKey | mldsa.MLDSA65PublicKey):
        key.verify(signature, message)
    elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP384R1):
        key.verify(signature, message, ec.ECDSA(hashes.SHA384()))
    else:
        raise InvalidSignature  # an unexpected key type never verifies anything


def verify_signatures(agency_key: AgencyKey, message: bytes, signatures: Sequence[bytes]) -> bool:
    """Whether ``signatures`` are valid over ``message`` under every key of ``agency_key``.

    Fails closed: the count must equal the number of signing keys of the suite (a pq-hybrid
    message with only its Ed25519 signature is a downgrade and is refused), and every one must
    verify. Never raises for bad input; the caller maps ``False`` to ``BAD_SIGNATURE``.

    Args:
        agency_key: a verified key generation from a :class:`~exchange.crypto.keys.TrustResolver`.
        message: the signed bytes.
        signatures: one signature per signing key, in suite order.

    Returns:
        ``True`` only if every signature verifies.
    """
    names = signing_algorithms(agency_key.suite)
    if not len(agency_key.signing_keys) == len(signatures) == len(names):
        _log.debug("signature count mismatch for key %s", agency_key.key_id)
        return False
    for name, signature in zip(names, signatures, strict=True):
        low, high = _SIGNATURE_LENGTHS[name]
        if not low <= len(signature) <= high:
            return False
    ok = True
    for key, signature in zip(agency_key.signing_keys, signatures, strict=True):
        try:
            _verify_one(key, bytes(signature), message)
        except (InvalidSignature, ValueError, TypeError):
            # Keep checking the rest so the time spent does not tell which key failed.
            ok = False
    return ok
