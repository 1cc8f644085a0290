"""Agency certificates: the profile, our X.509 extensions, key ids, and issuing them.

An agency certificate (one per agency, suite and key generation) is an X.509 v3 end-entity
certificate issued directly by its country's root for that suite family:

* subject ``CN=<agency id>, O=<country>``; SubjectPublicKeyInfo = the primary signing key
  (Ed25519 for classic and pq-hybrid, P-384 for cnsa);
* ``basicConstraints`` CA=false and ``keyUsage`` digitalSignature, both critical;
* ``agencyKeyBinding`` (critical): suite, key id, the other signing keys (ML-DSA-65 for
  pq-hybrid) and the HPKE KEM public key;
* ``publishingRights`` (critical): the record types the agency may publish.

The OIDs live under our UUID arc ``2.25.<uuid>`` (ITU-T X.667; needs no registration). Both are
critical so a verifier that does not understand them must refuse the certificate instead of
ignoring the KEM key or the publishing rights. Verification is in :mod:`.verification`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat import asn1
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, x25519
from cryptography.hazmat.primitives.hpke import MLKEM768X25519PublicKey
from cryptography.x509.oid import NameOID

from exchange.crypto.keys import KemPublicKey, SigningPublicKey, SuiteId
from exchange.crypto.pki.algorithms import SigningPrivateKey, root_suite_for_key

__all__ = [
    "OID_AGENCY_KEY_BINDING",
    "OID_PUBLISHING_RIGHTS",
    "RECORD_TYPES",
    "AgencyPublicKeys",
    "CertificateRejectedError",
    "build_agency_certificate",
    "compute_key_id",
    "issue_serial",
    "public_keys_for",
    "sign_certificate",
    "signing_public_key",
]

#: The project's X.667 UUID arc; ``.1.<n>`` are certificate extensions.
_ARC: Final = "2.25.28770244525367967633237105011873228983"
OID_AGENCY_KEY_BINDING: Final = x509.ObjectIdentifier(f"{_ARC}.1.1")
OID_PUBLISHING_RIGHTS: Final = x509.ObjectIdentifier(f"{_ARC}.1.2")

#: Record type names an agency may be allowed to publish.
RECORD_TYPES: Final = frozenset(
    {"seizure", "trace-request", "trace-response", "ballistic", "intel"}
)

BINDING_VERSION: Final = 1
_KEY_ID_DOMAIN: Final = b"exchange/key-id/v1\x00"
_KEY_ID_BYTES: Final = 16


@asn1.sequence
class AgencyKeyBindingAsn1:
    # AgencyKeyBinding ::= SEQUENCE { version INTEGER (1), suite UTF8String,
    #   keyId OCTET STRING (SIZE(16)), extraSigningKeys SEQUENCE OF OCTET STRING,
    #   kemKey SEQUENCE OF OCTET STRING }    -- raw public key encodings, see compute_key_id
    version: int
    suite: str
    key_id: bytes
    extra_signing_keys: list[bytes]
    kem_key: list[bytes]


@asn1.sequence
class PublishingRightsAsn1:
    # PublishingRights ::= SEQUENCE { recordTypes SEQUENCE OF UTF8String }
    record_types: list[str]


class CertificateRejectedError(Exception):
    """A certificate failed verification. Internal: the trust store maps it to an integrity reason.

    The message names the failed check for debug logs; it never reaches a remote peer.
    """


@dataclass(frozen=True)
class AgencyPublicKeys:
    """The public keys of one generation, in suite order, plus their raw encodings."""

    suite: SuiteId
    signing_keys: tuple[SigningPublicKey, ...]
    kem_key: KemPublicKey
    #: raw encodings, exactly as carried in the certificate (and hashed into the key id)
    signing_raw: tuple[bytes, ...]
    kem_raw: tuple[bytes, ...]

    @property
    def key_id(self) -> str:
        return compute_key_id(self.suite, self.signing_raw, self.kem_raw)


def raw_public_bytes(key: object) -> bytes:
    if isinstance(
        key,
        ed25519.Ed25519PublicKey
        | x25519.X25519PublicKey
        | mldsa.MLDSA65PublicKey
        | mlkem.MLKEM768PublicKey,
    ):
        return key.public_bytes_raw()
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP384R1):
        return key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    raise TypeError(f"got public key {type(key).__name__}, expected one of the suite key types")


def public_keys_for(
    suite: SuiteId,
    signing: Sequence[SigningPublicKey],
    kem_parts: Sequence[
        x25519.X25519PublicKey | mlkem.MLKEM768PublicKey | ec.EllipticCurvePublicKey
    ],
) -> AgencyPublicKeys:
    """Bundle freshly generated public keys.

    ``kem_parts`` is ``(X25519,)`` for classic, ``(ML-KEM-768, X25519)`` for pq-hybrid and
    ``(P-384,)`` for cnsa.
    """
    suite = SuiteId(suite)
    kem: KemPublicKey
    if suite is SuiteId.PQ_HYBRID:
        mlkem_pub, x_pub = kem_parts
        assert isinstance(mlkem_pub, mlkem.MLKEM768PublicKey)  # noqa: S101 - internal invariant
        assert isinstance(x_pub, x25519.X25519PublicKey)  # noqa: S101
        kem = MLKEM768X25519PublicKey(mlkem_pub, x_pub)
    else:
        (only,) = kem_parts
        assert isinstance(only, x25519.X25519PublicKey | ec.EllipticCurvePublicKey)  # noqa: S101
        kem = only
    return AgencyPublicKeys(
        suite=suite,
        signing_keys=tuple(signing),
        kem_key=kem,
        signing_raw=tuple(raw_public_bytes(k) for k in signing),
        kem_raw=tuple(raw_public_bytes(k) for k in kem_parts),
    )


def compute_key_id(suite: SuiteId, signing_raw: Sequence[bytes], kem_raw: Sequence[bytes]) -> str:
    """The key id of a generation: hex of the first 16 bytes of a domain-separated SHA-256.

    ``SHA-256("exchange/key-id/v1\\0" || suite || 0x00 || for each raw public key in suite order
    (signing keys, then KEM parts): u32be(len) || key)``. It depends only on the public keys,
    so anyone holding the certificate can recompute it, and the certificate cannot claim
    another generation's id.
    """
    digest = hashlib.sha256(_KEY_ID_DOMAIN + SuiteId(suite).value.encode() + b"\x00")
    for part in (*signing_raw, *kem_raw):
        digest.update(len(part).to_bytes(4, "big") + part)
    return digest.digest()[:_KEY_ID_BYTES].hex()


def issue_serial() -> int:
    """A certificate serial: issuance time in ns, then 64 random bits (RFC 5280: <= 20 octets).

    The random half keeps serials unpredictable (as CA/B Forum asks); the time half orders
    generations issued within the same second, so "the newest generation" is well defined even
    for a rotation right after an enrollment (X.509 validity has only one-second resolution).
    """
    return (time.time_ns() << 64) | secrets.randbits(64)


def build_agency_certificate(
    *,
    agency_id: str,
    keys: AgencyPublicKeys,
    may_publish: Iterable[str],
    issuer: x509.Certificate,
    issuer_key: SigningPrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """Issue the certificate of one agency key generation.

    Args:
        agency_id: ``<CTY>-<AGENCY>``; its country must be the issuer's.
        keys: the generation's public keys (``keys.suite`` must be the issuer's suite family).
        may_publish: subset of :data:`RECORD_TYPES`.
        issuer: the root certificate; issuer_key: its private key.
        not_before: start of validity; not_after: end of validity (both UTC, inclusive).

    Returns:
        The signed certificate.

    Raises:
        ValueError: unknown record types, empty rights, country or suite mismatch, bad validity.
    """
    rights = sorted(set(may_publish))
    if not rights or not set(rights) <= RECORD_TYPES:
        raise ValueError(
            f"got may_publish {rights!r}, expected a non-empty subset of {sorted(RECORD_TYPES)}"
        )
    if country_of(issuer) != agency_id.split("-", 1)[0]:
        raise ValueError(f"got agency {agency_id!r}, expected an agency of {country_of(issuer)}")
    if root_suite_for_key(issuer.public_key()) is not keys.suite:
        raise ValueError(f"got a {keys.suite} key generation for a root of another suite family")
    if not_after <= not_before:
        raise ValueError("got not_after before not_before, expected a positive validity period")
    binding = AgencyKeyBindingAsn1(
        version=BINDING_VERSION,
        suite=keys.suite.value,
        key_id=bytes.fromhex(keys.key_id),
        extra_signing_keys=list(keys.signing_raw[1:]),
        kem_key=list(keys.kem_raw),
    )
    primary = keys.signing_keys[0]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_agency_name(agency_id))
        .issuer_name(issuer.subject)
        .public_key(primary)
        .serial_number(issue_serial())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(ca=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(primary), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_public_key(issuer)),
            critical=False,
        )
        .add_extension(
            x509.UnrecognizedExtension(OID_AGENCY_KEY_BINDING, asn1.encode_der(binding)),
            critical=True,
        )
        .add_extension(
            x509.UnrecognizedExtension(
                OID_PUBLISHING_RIGHTS, asn1.encode_der(PublishingRightsAsn1(record_types=rights))
            ),
            critical=True,
        )
    )
    return sign_certificate(builder, issuer_key)


def sign_certificate(
    builder: x509.CertificateBuilder, issuer_key: SigningPrivateKey
) -> x509.Certificate:
    """Sign with the issuer's algorithm: pure Ed25519/ML-DSA, or ECDSA with SHA-384 for P-384."""
    if isinstance(issuer_key, ec.EllipticCurvePrivateKey):
        return builder.sign(issuer_key, hashes.SHA384())
    if isinstance(issuer_key, ed25519.Ed25519PrivateKey | mldsa.MLDSA65PrivateKey):
        return builder.sign(issuer_key, None)
    raise TypeError(
        f"got issuer key {type(issuer_key).__name__}, expected Ed25519, ML-DSA-65 or P-384"
    )


def signing_public_key(cert: x509.Certificate) -> SigningPublicKey:
    """The certificate's SPKI if it is one of our signing key types (Ed25519, ML-DSA-65, P-384).

    Raises:
        CertificateRejectedError: any other key type or curve.
    """
    key = cert.public_key()
    if isinstance(key, ed25519.Ed25519PublicKey | mldsa.MLDSA65PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP384R1):
        return key
    raise CertificateRejectedError(f"unsupported public key type {type(key).__name__}")


def _agency_name(agency_id: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, agency_id.split("-", 1)[0]),
            x509.NameAttribute(NameOID.COMMON_NAME, agency_id),
        ]
    )


def country_of(cert: x509.Certificate) -> str | None:
    # X.509's countryName is alpha-2; our ids are alpha-3, so the country rides in O.
    values = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(values[0].value) if len(values) == 1 else None


def key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
