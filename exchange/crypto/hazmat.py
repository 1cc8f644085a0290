"""Raw primitives of the envelope: hashing with domain separation, AEAD, HPKE wraps, signatures.

HAZARDOUS MATERIALS. These helpers take nonces, keys and labels from the caller and make no
decision about whether using them is safe. Producers and consumers must use the recipes in
:mod:`exchange.crypto` (``seal``/``open``/``verify``); ruff bans importing this module outside
``exchange/crypto`` (pyproject ``TID251``).
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from exchange.crypto.keys import AgencyKey, KemPublicKey, SuiteId
from exchange.crypto.pki.algorithms import verify_signatures as _table_verify
from exchange.crypto.suites import suite_info

__all__ = [
    "DEK_LENGTH",
    "NONCE_LENGTH",
    "aead_decrypt",
    "aead_encrypt",
    "counter_nonce",
    "digest",
    "equal",
    "hpke_wrap",
    "lp",
    "verify_signatures",
]

DEK_LENGTH = 32
NONCE_LENGTH = 12


def lp(data: bytes) -> bytes:
    """Length-prefix ``data`` with a 2-byte big-endian length, so concatenations are unambiguous.

    Raises:
        ValueError: ``data`` is 64 KiB or longer.
    """
    if len(data) > 0xFFFF:
        raise ValueError(f"got {len(data)} bytes, expected at most 65535")
    return struct.pack(">H", len(data)) + data


def digest(suite: SuiteId, label: bytes, *parts: bytes) -> bytes:
    """``H(label || 0x00 || parts...)`` with the suite's hash; labels never contain NUL.

    Every hash of the format has its own label (docs/envelope.md, "Domain separation"), so a
    digest computed for one purpose can never be replayed as a digest for another.
    """
    h = suite_info(suite).hash_factory()
    h.update(label)
    h.update(b"\x00")
    for part in parts:
        h.update(part)
    return bytes(h.digest())


def counter_nonce(counter: int) -> bytes:
    """The 96-bit AES-GCM nonce for message ``counter`` of a DEK epoch: 4 zero bytes || u64be."""
    if not 0 <= counter < 2**64:
        raise ValueError(f"got counter {counter}, expected 0 <= counter < 2**64")
    return b"\x00\x00\x00\x00" + struct.pack(">Q", counter)


def aead_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM encrypt; returns ``ciphertext || tag``. The caller keeps nonces unique."""
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def aead_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes | None:
    """AES-256-GCM decrypt; ``None`` on any authentication failure (never partial plaintext)."""
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except (InvalidTag, ValueError):
        return None


def hpke_wrap(suite: SuiteId, dek: bytes, public_key: KemPublicKey, info: bytes) -> bytes:
    """HPKE base-mode single-shot seal of ``dek`` (RFC 9180 §6.1); returns ``enc || ct``."""
    return suite_info(suite).hpke_suite().encrypt(dek, public_key, info)


def verify_signatures(agency_key: AgencyKey, message: bytes, signatures: Sequence[bytes]) -> bool:
    """True only if there is one signature per suite algorithm, each within its length bounds,
    and *every* one verifies (the shared table's AND-combiner: for pq-hybrid, Ed25519 and
    ML-DSA-65 must both verify). Never raises for bad input.
    """
    algs = suite_info(agency_key.suite).signatures
    if len(signatures) != len(algs) or any(
        not alg.min_length <= len(sig) <= alg.max_length
        for alg, sig in zip(algs, signatures, strict=True)
    ):
        return False
    return _table_verify(agency_key, message, signatures)


def equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison of digests and tags."""
    return hmac.compare_digest(a, b)
