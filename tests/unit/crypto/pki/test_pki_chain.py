"""Certificate chains: what the trust store accepts, and the forgeries it refuses."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding

from exchange.crypto.keys import SuiteId, TrustResolver
from exchange.crypto.pki import TrustStore, hpke_suite, verify_signatures
from exchange.crypto.pki.algorithms import SigningPrivateKey
from exchange.crypto.pki.ca import create_root, generate_root_key
from exchange.crypto.pki.certificates import OID_AGENCY_KEY_BINDING, OID_PUBLISHING_RIGHTS
from exchange.crypto.pki.keystore import as_signing_key, unlock
from exchange.errors import IntegrityError, IntegrityReason, PolicyError
from tests.unit.crypto.pki._pki_forge import name, reissue
from tests.unit.crypto.pki._pki_world import NOW, Pki

SUITES = pytest.mark.parametrize("suite", list(SuiteId), ids=lambda s: s.value)


def _files(
    pki: Pki,
) -> tuple[list[x509.Certificate], list[x509.Certificate], list[x509.CertificateRevocationList]]:
    trust = pki.layout.trust_dir
    roots = [
        x509.load_pem_x509_certificate(p.read_bytes()) for p in sorted(trust.glob("roots/*/*.pem"))
    ]
    certs = [
        x509.load_pem_x509_certificate(p.read_bytes())
        for p in sorted(trust.glob("agencies/*/*/*.pem"))
    ]
    crls = [x509.load_pem_x509_crl(p.read_bytes()) for p in sorted(trust.glob("crls/*/*.pem"))]
    return roots, certs, crls


def _cert_of(pki: Pki, agency: str, suite: SuiteId) -> x509.Certificate:
    (path,) = pki.layout.agency_cert_dir(agency, suite).glob("*.pem")
    return x509.load_pem_x509_certificate(path.read_bytes())


def _root(pki: Pki, country: str, suite: SuiteId) -> tuple[x509.Certificate, SigningPrivateKey]:
    cert = x509.load_pem_x509_certificate(pki.layout.root_cert(country, suite).read_bytes())
    keystore = unlock(pki.layout, pki.passphrase)
    key = as_signing_key(keystore.decrypt(pki.layout.root_key(country, suite)))
    return cert, key


def _reason(store: TrustResolver, agency: str, key_id: str, at: dt.datetime) -> IntegrityReason:
    with pytest.raises(IntegrityError) as info:
        store.signing_key(agency, key_id, at=at)
    return info.value.reason


def test_trust_store_implements_trust_resolver(demo_pki: Pki) -> None:
    store = demo_pki.store()
    assert isinstance(store, TrustResolver)
    assert store.problems == []
    assert store.agencies() == {"MEX-FGR", "MEX-SSPC", "USA-ATF", "USA-CBP"}


@SUITES
def test_chain_verifies_and_keys_work_end_to_end(demo_pki: Pki, suite: SuiteId) -> None:
    store = demo_pki.store()
    sender = demo_pki.provider("MEX-FGR")
    current = sender.current_key(suite, at=NOW)
    key = store.signing_key("MEX-FGR", current.key_id, at=NOW)
    # Compare ids: hpke.MLKEM768X25519PublicKey has no __eq__, so AgencyKey equality is by
    # identity for pq-hybrid keys.
    assert key.key_id == current.key_id
    assert key.suite is suite
    assert key.country == "MEX"
    assert len(key.signing_keys) == (2 if suite is SuiteId.PQ_HYBRID else 1)
    signatures = sender.sign(key.key_id, b"header digest")
    assert verify_signatures(key, b"header digest", signatures)
    assert not verify_signatures(key, b"other digest", signatures)

    recipient = store.current_key("USA-ATF", suite, at=NOW)
    sealed = hpke_suite(suite).encrypt(b"k" * 32, recipient.kem_key, info=b"ctx")
    assert (
        demo_pki.provider("USA-ATF").hpke_open(recipient.key_id, sealed, info=b"ctx") == b"k" * 32
    )


@SUITES
def test_pq_hybrid_downgrade_to_one_signature_rejected(demo_pki: Pki, suite: SuiteId) -> None:
    key = demo_pki.store().current_key("MEX-FGR", suite, at=NOW)
    signatures = demo_pki.provider("MEX-FGR").sign(key.key_id, b"m")
    assert not verify_signatures(key, b"m", signatures[:-1])
    assert not verify_signatures(key, b"m", (*signatures, signatures[0]))
    assert not verify_signatures(
        key, b"m", tuple(reversed(signatures)) if len(signatures) > 1 else (b"",)
    )


def test_unknown_sender_is_untrusted(demo_pki: Pki) -> None:
    store = demo_pki.store()
    assert _reason(store, "MEX-XYZ", "00" * 16, NOW) is IntegrityReason.UNTRUSTED_SENDER
    real = store.current_key("MEX-FGR", SuiteId.CLASSIC, at=NOW)
    # Right key id, wrong agency: ids are looked up per agency.
    assert _reason(store, "MEX-SSPC", real.key_id, NOW) is IntegrityReason.UNTRUSTED_SENDER
    with pytest.raises(PolicyError, match="MEX-XYZ has no valid classic key"):
        store.current_key("MEX-XYZ", SuiteId.CLASSIC, at=NOW)


@SUITES
def test_agency_certified_by_the_other_countrys_root_rejected(pki: Pki, suite: SuiteId) -> None:
    # A rogue or compromised MEX root issues a certificate for a US agency.
    usa = _cert_of(pki, "USA-ATF", suite)
    mex_root, mex_key = _root(pki, "MEX", suite)
    for subject in (name("USA", "USA-ATF"), name("MEX", "USA-ATF")):
        forged = reissue(usa, issuer_name=mex_root.subject, issuer_key=mex_key, subject=subject)
        roots, certs, crls = _files(pki)
        # The genuine USA-ATF certificate is left out so only the forgery could answer.
        certs = [c for c in certs if c.subject.rfc4514_string().find("USA-ATF") < 0] + [forged]
        store = TrustStore(roots=roots, certificates=certs, crls=crls)
        key_id = pki.store().current_key("USA-ATF", suite, at=NOW).key_id
        assert _reason(store, "USA-ATF", key_id, NOW) is IntegrityReason.UNTRUSTED_SENDER
        assert any("USA-ATF" in p and "not under the MEX root" in p for p in store.problems)


@SUITES
def test_forged_self_signed_lookalike_root_rejected(pki: Pki, suite: SuiteId) -> None:
    # The attacker builds a root with the genuine root's exact name and issues MEX-FGR a cert
    # carrying the genuine keys' extension (same key id) but the attacker's SPKI.
    genuine_root, _ = _root(pki, "MEX", suite)
    fake_key = generate_root_key(suite)
    genuine = _cert_of(pki, "MEX-FGR", suite)
    forged = reissue(genuine, issuer_name=genuine_root.subject, issuer_key=fake_key)
    roots, certs, crls = _files(pki)
    certs = [c for c in certs if c != genuine]
    store = TrustStore(roots=roots, certificates=[*certs, forged], crls=crls)
    key_id = pki.store().current_key("MEX-FGR", suite, at=NOW).key_id
    assert _reason(store, "MEX-FGR", key_id, NOW) is IntegrityReason.UNTRUSTED_SENDER

    # Beside the genuine certificate, the forgery neither replaces nor shadows it.
    store = TrustStore(roots=roots, certificates=[*certs, genuine, forged], crls=crls)
    assert store.signing_key("MEX-FGR", key_id, at=NOW).key_id == key_id


def test_self_signed_agency_certificate_rejected(pki: Pki) -> None:
    genuine = _cert_of(pki, "MEX-FGR", SuiteId.CLASSIC)
    attacker = ed25519.Ed25519PrivateKey.generate()
    forged = reissue(
        genuine, issuer_name=genuine.subject, issuer_key=attacker, public_key=attacker.public_key()
    )
    roots, _, crls = _files(pki)
    store = TrustStore(roots=roots, certificates=[forged], crls=crls)
    assert store.agencies() == frozenset()
    assert len(store.problems) == 1


def test_untrusted_root_added_as_root_is_not_a_country_root(pki: Pki) -> None:
    # A root for a country we do not serve is refused as a trust anchor.
    key = generate_root_key(SuiteId.CLASSIC)
    alien = create_root("MEX", SuiteId.CLASSIC, key, not_before=NOW, valid_days=10)
    alien = reissue(alien, issuer_name=name("CAN", "x"), issuer_key=key, subject=name("CAN", "x"))
    roots, certs, crls = _files(pki)
    store = TrustStore(roots=[*roots, alien], certificates=certs, crls=crls)
    assert any("rejected" in p for p in store.problems)


def test_tampered_certificate_signature_rejected(pki: Pki) -> None:
    genuine = _cert_of(pki, "MEX-FGR", SuiteId.PQ_HYBRID)
    der = bytearray(genuine.public_bytes(Encoding.DER))
    der[-10] ^= 0x01  # inside the ML-DSA signature
    tampered = x509.load_der_x509_certificate(bytes(der))
    roots, certs, crls = _files(pki)
    store = TrustStore(
        roots=roots, certificates=[c for c in certs if c != genuine] + [tampered], crls=crls
    )
    assert "MEX-FGR" not in {
        e.key.agency_id for e in store.entries() if e.key.suite is SuiteId.PQ_HYBRID
    }


@SUITES
def test_misissued_certificate_claiming_another_key_id_rejected(pki: Pki, suite: SuiteId) -> None:
    # Even the genuine root cannot bind a key id that is not the hash of the certified keys.
    genuine = _cert_of(pki, "MEX-FGR", suite)
    root, root_key = _root(pki, "MEX", suite)
    binding = genuine.extensions.get_extension_for_oid(OID_AGENCY_KEY_BINDING).value
    assert isinstance(binding, x509.UnrecognizedExtension)
    raw = binding.value
    victim = pki.store().current_key("MEX-SSPC", suite, at=NOW).key_id
    own = pki.store().current_key("MEX-FGR", suite, at=NOW).key_id
    forged = reissue(
        genuine,
        issuer_name=root.subject,
        issuer_key=root_key,
        replace={OID_AGENCY_KEY_BINDING: raw.replace(bytes.fromhex(own), bytes.fromhex(victim))},
    )
    roots, _certs, crls = _files(pki)
    store = TrustStore(roots=roots, certificates=[forged], crls=crls)
    assert store.entries() == ()
    assert any("key id does not match" in p for p in store.problems)


def test_unknown_critical_extension_rejected(pki: Pki) -> None:
    genuine = _cert_of(pki, "MEX-FGR", SuiteId.CLASSIC)
    root, root_key = _root(pki, "MEX", SuiteId.CLASSIC)
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    forged = reissue(genuine, issuer_name=root.subject, issuer_key=root_key, add=(unknown, True))
    roots, _, crls = _files(pki)
    store = TrustStore(roots=roots, certificates=[forged], crls=crls)
    assert store.entries() == ()
    assert any("unknown critical extension" in p for p in store.problems)


@pytest.mark.parametrize(
    "oid", [OID_AGENCY_KEY_BINDING, OID_PUBLISHING_RIGHTS], ids=["binding", "rights"]
)
def test_certificate_without_our_extensions_rejected(pki: Pki, oid: x509.ObjectIdentifier) -> None:
    genuine = _cert_of(pki, "USA-CBP", SuiteId.CNSA)
    root, root_key = _root(pki, "USA", SuiteId.CNSA)
    forged = reissue(genuine, issuer_name=root.subject, issuer_key=root_key, drop=frozenset({oid}))
    roots, _, crls = _files(pki)
    assert TrustStore(roots=roots, certificates=[forged], crls=crls).entries() == ()


def test_suite_family_cannot_be_crossed(pki: Pki) -> None:
    # A classic (Ed25519) root signing a pq-hybrid agency cert would make the PQ chain classic.
    genuine = _cert_of(pki, "MEX-FGR", SuiteId.PQ_HYBRID)
    root, root_key = _root(pki, "MEX", SuiteId.CLASSIC)
    forged = reissue(genuine, issuer_name=root.subject, issuer_key=root_key)
    roots, _, crls = _files(pki)
    assert TrustStore(roots=roots, certificates=[forged], crls=crls).entries() == ()


@SUITES
def test_key_outside_validity_at_signing_time_rejected(demo_pki: Pki, suite: SuiteId) -> None:
    store = demo_pki.store()
    key = store.current_key("USA-CBP", suite, at=NOW)
    assert store.signing_key("USA-CBP", key.key_id, at=key.not_before) is key  # inclusive
    assert store.signing_key("USA-CBP", key.key_id, at=key.not_after) is key  # inclusive
    second = dt.timedelta(seconds=1)
    expired = _reason(store, "USA-CBP", key.key_id, key.not_after + second)
    not_yet = _reason(store, "USA-CBP", key.key_id, key.not_before - second)
    assert expired is IntegrityReason.KEY_NOT_VALID_AT_SIGNING_TIME
    assert not_yet is IntegrityReason.KEY_NOT_VALID_AT_SIGNING_TIME
    with pytest.raises(PolicyError):
        store.current_key("USA-CBP", suite, at=key.not_after + second)


def test_naive_signing_time_is_a_programmer_error(demo_pki: Pki) -> None:
    store = demo_pki.store()
    key = store.current_key("USA-CBP", SuiteId.CLASSIC, at=NOW)
    with pytest.raises(ValueError, match="naive"):
        store.signing_key("USA-CBP", key.key_id, at=NOW.replace(tzinfo=None))


def test_two_certificates_for_one_key_id_are_both_ignored(pki: Pki) -> None:
    # A re-issued certificate for the same keys would make "the key valid at T" ambiguous.
    genuine = _cert_of(pki, "MEX-FGR", SuiteId.CLASSIC)
    root, root_key = _root(pki, "MEX", SuiteId.CLASSIC)
    twin = reissue(
        genuine,
        issuer_name=root.subject,
        issuer_key=root_key,
        not_after=NOW + dt.timedelta(days=9000),
    )
    roots, certs, crls = _files(pki)
    store = TrustStore(roots=roots, certificates=[*certs, twin], crls=crls)
    key_id = pki.store().current_key("MEX-FGR", SuiteId.CLASSIC, at=NOW).key_id
    assert _reason(store, "MEX-FGR", key_id, NOW) is IntegrityReason.UNTRUSTED_SENDER
    assert any("several certificates" in p for p in store.problems)


def test_unparsable_and_oversized_trust_files_are_skipped(pki: Pki) -> None:
    (pki.layout.trust_dir / "agencies" / "MEX-FGR" / "classic" / "junk.pem").write_bytes(
        b"not a cert"
    )
    big = pki.layout.trust_dir / "agencies" / "MEX-FGR" / "cnsa" / "big.pem"
    big.write_bytes(b"A" * (65 * 1024))
    store = pki.store()
    assert "MEX-FGR" in store.agencies()
    assert any("unparsable certificate" in p for p in store.problems)
    assert any("larger than" in p for p in store.problems)


def test_malformed_extensions_are_rejected_not_raised(pki: Pki) -> None:
    # cryptography parses extensions lazily; garbage must become a rejection, never a crash
    # of the whole trust store (which would take every other agency down with it).
    genuine = _cert_of(pki, "MEX-FGR", SuiteId.CLASSIC)
    root, root_key = _root(pki, "MEX", SuiteId.CLASSIC)
    garbage = {x509.oid.ExtensionOID.KEY_USAGE: b"\x01\x02garbage"}
    bad_leaf = reissue(genuine, issuer_name=root.subject, issuer_key=root_key, replace=garbage)
    bad_root = reissue(root, issuer_name=root.subject, issuer_key=root_key, replace=garbage)
    roots, certs, crls = _files(pki)
    store = TrustStore(roots=[*roots, bad_root], certificates=[*certs, bad_leaf], crls=crls)
    assert any("malformed" in p for p in store.problems)
    assert "USA-ATF" in store.agencies()
    assert len(store.entries()) == len(certs)
