"""Revocation: CRLs signed by the root, checked against the message's signing time."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from exchange.crypto.keys import SuiteId
from exchange.crypto.pki import TrustStore, revoke_key
from exchange.crypto.pki.keystore import as_signing_key, unlock
from exchange.crypto.pki.revocation import Revocation, build_crl
from exchange.errors import ConfigurationError, IntegrityError, IntegrityReason, PolicyError
from tests.unit.crypto.pki._pki_world import NOW, Pki

HOUR = dt.timedelta(hours=1)
SECOND = dt.timedelta(seconds=1)


def _reason(store: TrustStore, agency: str, key_id: str, at: dt.datetime) -> IntegrityReason | None:
    try:
        store.signing_key(agency, key_id, at=at)
    except IntegrityError as exc:
        return exc.reason
    return None


@pytest.mark.parametrize("suite", list(SuiteId), ids=lambda s: s.value)
def test_revoked_key_rejected_at_and_after_revocation_time(pki: Pki, suite: SuiteId) -> None:
    key = pki.store().current_key("MEX-FGR", suite, at=NOW)
    revoked_at = NOW + 10 * HOUR
    revocation = revoke_key(
        pki.home,
        "MEX-FGR",
        key.key_id,
        pki.passphrase,
        reason=x509.ReasonFlags.superseded,
        now=revoked_at,
    )
    assert revocation.revoked_at == revoked_at
    store = pki.store()
    assert _reason(store, "MEX-FGR", key.key_id, revoked_at - SECOND) is None  # benign: before R ok
    assert _reason(store, "MEX-FGR", key.key_id, revoked_at) is IntegrityReason.REVOKED_KEY
    assert _reason(store, "MEX-FGR", key.key_id, revoked_at + HOUR) is IntegrityReason.REVOKED_KEY
    # Other agencies under the same root are unaffected.
    other = store.current_key("MEX-SSPC", suite, at=NOW)
    assert _reason(store, "MEX-SSPC", other.key_id, revoked_at + HOUR) is None


def test_compromised_key_rejected_even_for_backdated_messages(pki: Pki) -> None:
    # Whoever holds a compromised key also chooses the claimed signing time, so a
    # keyCompromise revocation refuses every message, including those "signed" before R.
    key = pki.store().current_key("USA-ATF", SuiteId.PQ_HYBRID, at=NOW)
    revoked_at = NOW + 48 * HOUR
    revoke_key(
        pki.home, "USA-ATF", key.key_id, pki.passphrase, now=revoked_at
    )  # default: compromise
    store = pki.store()
    assert _reason(store, "USA-ATF", key.key_id, NOW) is IntegrityReason.REVOKED_KEY
    assert _reason(store, "USA-ATF", key.key_id, revoked_at - HOUR) is IntegrityReason.REVOKED_KEY
    with pytest.raises(PolicyError):
        store.current_key("USA-ATF", SuiteId.PQ_HYBRID, at=NOW)
    entry = store.entry("USA-ATF", key.key_id)
    assert entry is not None
    assert entry.revocation is not None
    assert entry.revocation.compromised


def test_revoking_twice_or_unknown_key_is_refused(pki: Pki) -> None:
    key = pki.store().current_key("USA-ATF", SuiteId.CLASSIC, at=NOW)
    revoke_key(pki.home, "USA-ATF", key.key_id, pki.passphrase, now=NOW)
    with pytest.raises(ConfigurationError, match="already revoked"):
        revoke_key(pki.home, "USA-ATF", key.key_id, pki.passphrase, now=NOW)
    with pytest.raises(ConfigurationError, match="no trusted certificate"):
        revoke_key(pki.home, "USA-ATF", "ab" * 16, pki.passphrase, now=NOW)


def test_crl_numbers_increase_and_revocations_accumulate(pki: Pki) -> None:
    store = pki.store()
    first = store.current_key("MEX-FGR", SuiteId.CNSA, at=NOW).key_id
    second = store.current_key("MEX-SSPC", SuiteId.CNSA, at=NOW).key_id
    revoke_key(pki.home, "MEX-FGR", first, pki.passphrase, now=NOW)
    revoke_key(pki.home, "MEX-SSPC", second, pki.passphrase, now=NOW + HOUR)
    crl = x509.load_pem_x509_crl(pki.layout.crl("MEX", SuiteId.CNSA).read_bytes())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 3
    assert len(list(crl)) == 2
    store = pki.store()
    assert _reason(store, "MEX-FGR", first, NOW + 2 * HOUR) is IntegrityReason.REVOKED_KEY
    assert _reason(store, "MEX-SSPC", second, NOW + 2 * HOUR) is IntegrityReason.REVOKED_KEY


def test_tampered_crl_rejected_and_its_root_fails_closed(pki: Pki) -> None:
    key = pki.store().current_key("MEX-FGR", SuiteId.CLASSIC, at=NOW)
    revoke_key(pki.home, "MEX-FGR", key.key_id, pki.passphrase, now=NOW)
    path = pki.layout.crl("MEX", SuiteId.CLASSIC)
    crl = x509.load_pem_x509_crl(path.read_bytes())
    der = bytearray(crl.public_bytes(Encoding.DER))
    der[-5] ^= 0x01  # inside the Ed25519 signature
    path.write_bytes(x509.load_der_x509_crl(bytes(der)).public_bytes(Encoding.PEM))
    store = pki.store()
    assert any("CRL" in p and "signature" in p for p in store.problems)
    # Without a trustworthy CRL nothing under the MEX classic root is trusted ...
    for agency in ("MEX-FGR", "MEX-SSPC"):
        with pytest.raises(PolicyError):
            store.current_key(agency, SuiteId.CLASSIC, at=NOW)
    assert _reason(store, "MEX-FGR", key.key_id, NOW) is IntegrityReason.UNTRUSTED_SENDER
    # ... while the other roots keep working.
    store.current_key("MEX-FGR", SuiteId.PQ_HYBRID, at=NOW)
    store.current_key("USA-ATF", SuiteId.CLASSIC, at=NOW)


def test_crl_stripped_of_revocations_by_another_signer_rejected(pki: Pki) -> None:
    # An attacker replaces the CRL with an empty one signed by a different root (the USA one).
    key = pki.store().current_key("MEX-FGR", SuiteId.CLASSIC, at=NOW)
    revoke_key(pki.home, "MEX-FGR", key.key_id, pki.passphrase, now=NOW)
    keystore = unlock(pki.layout, pki.passphrase)
    usa_key = as_signing_key(keystore.decrypt(pki.layout.root_key("USA", SuiteId.CLASSIC)))
    mex_root = x509.load_pem_x509_certificate(
        pki.layout.root_cert("MEX", SuiteId.CLASSIC).read_bytes()
    )
    forged = build_crl(issuer=mex_root, issuer_key=usa_key, revocations=(), number=99, now=NOW)
    pki.layout.crl("MEX", SuiteId.CLASSIC).write_bytes(forged.public_bytes(Encoding.PEM))
    store = pki.store()
    assert _reason(store, "MEX-FGR", key.key_id, NOW) is IntegrityReason.UNTRUSTED_SENDER


def test_replayed_older_crl_does_not_unrevoke(pki: Pki) -> None:
    # Given both the old (empty) and the new CRL, the store keeps the highest CRL number.
    old = x509.load_pem_x509_crl(pki.layout.crl("USA", SuiteId.CNSA).read_bytes())
    key = pki.store().current_key("USA-CBP", SuiteId.CNSA, at=NOW)
    revoke_key(pki.home, "USA-CBP", key.key_id, pki.passphrase, now=NOW)
    new = x509.load_pem_x509_crl(pki.layout.crl("USA", SuiteId.CNSA).read_bytes())
    base = pki.store()
    roots = list(base.roots())
    certs = [e.certificate for e in base.entries()]
    others = [
        x509.load_pem_x509_crl(p.read_bytes())
        for p in sorted(pki.layout.trust_dir.glob("crls/*/*.pem"))
        if p != pki.layout.crl("USA", SuiteId.CNSA)
    ]
    for order in ([old, new], [new, old]):
        store = TrustStore(roots=roots, certificates=certs, crls=[*others, *order])
        assert _reason(store, "USA-CBP", key.key_id, NOW) is IntegrityReason.REVOKED_KEY


def test_crl_entry_without_reason_counts_as_compromise() -> None:
    revocation = Revocation(serial=1, revoked_at=NOW, reason=x509.ReasonFlags.unspecified)
    assert revocation.compromised
    assert revocation.rejects(NOW - HOUR)
    benign = Revocation(serial=1, revoked_at=NOW, reason=x509.ReasonFlags.cessation_of_operation)
    assert not benign.rejects(NOW - SECOND)
    assert benign.rejects(NOW)


def test_concurrent_revocations_under_one_root_both_land(pki: Pki) -> None:
    # Two operators revoking at once must not both write "CRL n+1" and lose one revocation.
    import threading  # noqa: PLC0415 - only this test needs threads

    store = pki.store()
    targets = [
        (a, store.current_key(a, SuiteId.PQ_HYBRID, at=NOW).key_id) for a in ("MEX-FGR", "MEX-SSPC")
    ]
    errors: list[BaseException] = []

    def revoke(agency: str, key_id: str) -> None:
        try:
            revoke_key(pki.home, agency, key_id, pki.passphrase, now=NOW)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=revoke, args=t) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    crl = x509.load_pem_x509_crl(pki.layout.crl("MEX", SuiteId.PQ_HYBRID).read_bytes())
    assert len(list(crl)) == 2
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 3
