"""What envelope v1 needs to know about each suite, on top of the one algorithm table.

The suite -> algorithm table (HPKE suite, signature algorithms and their order, signing and
verification) lives in :mod:`exchange.crypto.pki.algorithms`, shared with the PKI so a suite
can never mean two things. This module adds only envelope wire facts derived from it: the
hash used for every digest of the format, the exact length of a wrapped DEK and the length
bounds of each signature encoding (checked before any verification).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from cryptography.hazmat.primitives import hpke

from exchange.crypto.keys import SuiteId
from exchange.crypto.pki.algorithms import hpke_suite, signing_algorithms

__all__ = ["SUITES", "SigAlg", "SuiteInfo", "suite_info"]


@dataclass(frozen=True)
class SigAlg:
    """A signature algorithm of the shared table and the length bounds of its encoding."""

    name: str
    min_length: int
    max_length: int


#: Encoded lengths: Ed25519 raw (RFC 8032), ML-DSA-65 raw (FIPS 204 Table 2), ECDSA P-384
#: DER Ecdsa-Sig-Value (RFC 5480 §2.2.3; two INTEGERs of at most 49 bytes in a SEQUENCE).
_SIG_BOUNDS: Final = MappingProxyType(
    {"ed25519": (64, 64), "mldsa65": (3309, 3309), "p384": (8, 104)}
)
#: RFC 9180 §7.1 Nenc: X25519 32, P-384 97; X-Wing (ML-KEM-768-X25519) 1088 + 32.
_ENC_LENGTH: Final = MappingProxyType(
    {SuiteId.CLASSIC: 32, SuiteId.PQ_HYBRID: 1120, SuiteId.CNSA: 97}
)


@dataclass(frozen=True)
class SuiteInfo:
    """Envelope facts of one suite.

    Attributes:
        suite: the suite id.
        hash_name / hash_factory / digest_size: the digest used everywhere in the format
            (SHA-256; SHA-384 for cnsa, as CNSA 1.0 pairs it with P-384).
        signatures: the signature algorithms in wire order; every one must verify.
        wrap_length: exact ``enc || ct`` length of one wrapped 32-byte DEK
            (Nenc + 32 + 16-byte AES-GCM tag).
    """

    suite: SuiteId
    hash_name: str
    hash_factory: Callable[..., Any]
    digest_size: int
    signatures: tuple[SigAlg, ...]
    wrap_length: int

    def hpke_suite(self) -> hpke.Suite:
        """The RFC 9180 suite that wraps DEKs (from the shared table)."""
        return hpke_suite(self.suite)


def _row(suite: SuiteId, hash_name: str) -> SuiteInfo:
    factory = getattr(hashlib, hash_name)
    return SuiteInfo(
        suite=suite,
        hash_name=hash_name,
        hash_factory=factory,
        digest_size=factory().digest_size,
        signatures=tuple(SigAlg(n, *_SIG_BOUNDS[n]) for n in signing_algorithms(suite)),
        wrap_length=_ENC_LENGTH[suite] + 32 + 16,
    )


SUITES: Final = MappingProxyType(
    {
        SuiteId.CLASSIC: _row(SuiteId.CLASSIC, "sha256"),
        SuiteId.PQ_HYBRID: _row(SuiteId.PQ_HYBRID, "sha256"),
        SuiteId.CNSA: _row(SuiteId.CNSA, "sha384"),
    }
)


def suite_info(suite: SuiteId) -> SuiteInfo:
    """The envelope facts of ``suite``.

    Raises:
        KeyError: ``suite`` is not a :class:`SuiteId`.
    """
    return SUITES[suite]
