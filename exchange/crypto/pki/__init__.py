"""The exchange PKI: country roots, agency certificates, revocation, encrypted keys.

Each country (MEX, USA) runs one root CA per suite family; agencies get one certificate per
suite and key generation, binding their id to their signing and KEM public keys and to the
record types they may publish. :class:`TrustStore` implements
:class:`~exchange.crypto.keys.TrustResolver` and :class:`FileKeyProvider` implements
:class:`~exchange.crypto.keys.KeyProvider`. See docs/pki.md.

Example::

    from datetime import UTC, datetime
    from exchange.crypto.keys import SuiteId
    from exchange.crypto.pki import FileKeyProvider, Passphrase, bootstrap_demo_pki

    passphrase = Passphrase(b"correct horse battery staple")
    store = bootstrap_demo_pki(home, passphrase)            # MEX + USA roots, six agencies
    fgr = FileKeyProvider(PkiLayout(home), "MEX-FGR", passphrase, trust=store)
    key = fgr.current_key(SuiteId.PQ_HYBRID, at=datetime.now(UTC))
    sigs = fgr.sign(key.key_id, b"message")
    assert verify_signatures(store.signing_key("MEX-FGR", key.key_id, at=now), b"message", sigs)
"""

from __future__ import annotations

from exchange.crypto.pki.algorithms import ALL_SUITES, hpke_suite, sign_with, verify_signatures
from exchange.crypto.pki.authority import init_country, revoke_key
from exchange.crypto.pki.certificates import RECORD_TYPES, compute_key_id
from exchange.crypto.pki.enrollment import (
    DEMO_AGENCIES,
    bootstrap_demo_pki,
    enroll_agency,
    rotate_agency,
)
from exchange.crypto.pki.history import read_history, verify_history
from exchange.crypto.pki.layout import PkiLayout
from exchange.crypto.pki.passphrase import Passphrase
from exchange.crypto.pki.provider import FileKeyProvider
from exchange.crypto.pki.revocation import Revocation
from exchange.crypto.pki.truststore import KeyStatus, TrustEntry, TrustStore

__all__ = [
    "ALL_SUITES",
    "DEMO_AGENCIES",
    "RECORD_TYPES",
    "FileKeyProvider",
    "KeyStatus",
    "Passphrase",
    "PkiLayout",
    "Revocation",
    "TrustEntry",
    "TrustStore",
    "bootstrap_demo_pki",
    "compute_key_id",
    "enroll_agency",
    "hpke_suite",
    "init_country",
    "read_history",
    "revoke_key",
    "rotate_agency",
    "sign_with",
    "verify_history",
    "verify_signatures",
]
