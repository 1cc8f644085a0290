"""Pin the public surface of exchange.crypto.pki (STYLE.md §1)."""

from __future__ import annotations

from exchange.crypto import pki
from exchange.crypto.keys import KeyProvider, TrustResolver

EXPECTED = {
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
}


def test_public_names_are_pinned() -> None:
    assert set(pki.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(pki, name) is not None, name


def test_record_types_are_the_five_names_of_the_issue() -> None:
    assert {"seizure", "trace-request", "trace-response", "ballistic", "intel"} == pki.RECORD_TYPES


def test_implementations_satisfy_the_shared_protocols() -> None:
    # runtime_checkable only checks method names; the signatures are pinned by mypy --strict.
    assert issubclass(pki.TrustStore, TrustResolver)
    assert {"agency_id", "current_key", "sign", "hpke_open"} <= set(dir(pki.FileKeyProvider))
    assert KeyProvider is not None
