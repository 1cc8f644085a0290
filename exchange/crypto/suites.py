"""The suite -> algorithm table of the envelope (unstable, internal).

One row per :class:`~exchange.crypto.keys.SuiteId`. Everything the envelope code needs to know
about a suite is here: the hash used for every digest of the format (commitment, AEAD associated
data, signing digest, Merkle tree), the HPKE suite (RFC 9180 §7) used to wrap DEKs, and the
ordered list of signature algorithms that must *all* verify.

The PKI package owns certificate algorithms; when its table lands this module re-exports the
HPKE part from it so there is a single table (see docs/envelope.md, "Suites").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from cryptography.hazmat.primitives import hpke

from exchange.crypto.keys import SuiteId

__all__ = ["SUITES", "SigAlg", "SuiteInfo", "suite_info"]


class SigAlg(Enum):
    """A signature algorithm and the (min, max) length of its wire encoding."""

    ED25519 = ("ed25519", 64, 64)
    #: FIPS 204 ML-DSA-65, pure mode, empty context string.
    MLDSA65 = ("mldsa65", 3309, 3309)
    #: ECDSA P-384 with SHA-384, DER ``Ecdsa-Sig-Value`` (RFC 5480 §2.2.3), at most 104 bytes.
    ECDSA_P384_SHA384 = ("p384", 8, 104)

    @property
    def min_length(self) -> int:
        return int(self.value[1])

    @property
    def max_length(self) -> int:
        return int(self.value[2])


@dataclass(frozen=True)
class SuiteInfo:
    """Algorithms of one suite.

    Attributes:
        suite: the suite id.
        hash_name: name of the digest used everywhere in the format for this suite.
        hash_factory: ``hashlib`` constructor of that digest.
        digest_size: its output length in bytes.
        signatures: signature algorithms, in wire order; every one must verify.
        hpke_kem / hpke_kdf / hpke_aead: the RFC 9180 suite wrapping DEKs.
        max_wrap_length: exact ``enc || ct`` length of one wrapped 32-byte DEK.
    """

    suite: SuiteId
    hash_name: str
    hash_factory: Callable[..., Any]
    digest_size: int
    signatures: tuple[SigAlg, ...]
    hpke_kem: hpke.KEM
    hpke_kdf: hpke.KDF
    hpke_aead: hpke.AEAD

    @property
    def wrap_length(self) -> int:
        # enc (RFC 9180 §4 Nenc) || AES-256-GCM(32-byte DEK) || 16-byte tag
        return int(self.hpke_kem.enc_length()) + 32 + 16

    def hpke_suite(self) -> hpke.Suite:
        return hpke.Suite(self.hpke_kem, self.hpke_kdf, self.hpke_aead)


SUITES: dict[SuiteId, SuiteInfo] = {
    SuiteId.CLASSIC: SuiteInfo(
        suite=SuiteId.CLASSIC,
        hash_name="sha256",
        hash_factory=hashlib.sha256,
        digest_size=32,
        signatures=(SigAlg.ED25519,),
        hpke_kem=hpke.KEM.X25519,
        hpke_kdf=hpke.KDF.HKDF_SHA256,
        hpke_aead=hpke.AEAD.AES_256_GCM,
    ),
    SuiteId.PQ_HYBRID: SuiteInfo(
        suite=SuiteId.PQ_HYBRID,
        hash_name="sha256",
        hash_factory=hashlib.sha256,
        digest_size=32,
        signatures=(SigAlg.ED25519, SigAlg.MLDSA65),
        hpke_kem=hpke.KEM.MLKEM768_X25519,
        hpke_kdf=hpke.KDF.HKDF_SHA256,
        hpke_aead=hpke.AEAD.AES_256_GCM,
    ),
    # CNSA 1.0 asks for SHA-384 with P-384, so every digest of a cnsa envelope is SHA-384.
    SuiteId.CNSA: SuiteInfo(
        suite=SuiteId.CNSA,
        hash_name="sha384",
        hash_factory=hashlib.sha384,
        digest_size=48,
        signatures=(SigAlg.ECDSA_P384_SHA384,),
        hpke_kem=hpke.KEM.P384,
        hpke_kdf=hpke.KDF.HKDF_SHA384,
        hpke_aead=hpke.AEAD.AES_256_GCM,
    ),
}


def suite_info(suite: SuiteId) -> SuiteInfo:
    """The algorithm row of ``suite``.

    Raises:
        KeyError: ``suite`` has no row (cannot happen for a valid :class:`SuiteId`).
    """
    return SUITES[suite]
