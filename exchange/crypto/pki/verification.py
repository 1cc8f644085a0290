"""Verifying agency certificates and roots against the profile of :mod:`.certificates`.

The chain is always root -> agency, so the checks are few and explicit (decision 0001 says why
``x509.verification.PolicyBuilder`` is not used: it forbids Ed25519 roots and cannot accept our
critical private extensions). Time is not checked here: the trust store checks validity at each
message's signing time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from cryptography import x509
from cryptography.hazmat import asn1
from cryptography.hazmat.primitives.asymmetric import ec, mldsa, mlkem, x25519
from cryptography.hazmat.primitives.hpke import MLKEM768X25519PublicKey
from cryptography.x509.oid import NameOID

from exchange.crypto.keys import AgencyKey, KemPublicKey, SigningPublicKey, SuiteId
from exchange.crypto.pki.algorithms import root_suite_for_key
from exchange.crypto.pki.certificates import (
    BINDING_VERSION,
    OID_AGENCY_KEY_BINDING,
    OID_PUBLISHING_RIGHTS,
    RECORD_TYPES,
    AgencyKeyBindingAsn1,
    CertificateRejectedError,
    PublishingRightsAsn1,
    compute_key_id,
    country_of,
    raw_public_bytes,
    signing_public_key,
)
from exchange.crypto.pki.layout import AGENCY_ID_RE, COUNTRY_RE

__all__ = ["check_root", "verify_agency_certificate"]

_T = TypeVar("_T")

# Extensions an agency certificate may carry. Anything else critical is refused (RFC 5280 4.2).
_UNDERSTOOD: Final = frozenset(
    {
        x509.oid.ExtensionOID.BASIC_CONSTRAINTS,
        x509.oid.ExtensionOID.KEY_USAGE,
        x509.oid.ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        x509.oid.ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        OID_AGENCY_KEY_BINDING,
        OID_PUBLISHING_RIGHTS,
    }
)

_EXTRA_SIGNING_KEYS: Final = {"classic": 0, "pq-hybrid": 1, "cnsa": 0}


def _ext_value(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes:
    try:
        ext = cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        raise CertificateRejectedError(f"missing extension {oid.dotted_string}") from None
    if not ext.critical or not isinstance(ext.value, x509.UnrecognizedExtension):
        raise CertificateRejectedError(f"extension {oid.dotted_string} must be critical")
    return ext.value.value


def _decode_kem(suite: SuiteId, parts: Sequence[bytes]) -> KemPublicKey:
    if suite is SuiteId.CLASSIC and len(parts) == 1:
        return x25519.X25519PublicKey.from_public_bytes(parts[0])
    if suite is SuiteId.PQ_HYBRID and len(parts) == 2:
        return MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(parts[0]),
            x25519.X25519PublicKey.from_public_bytes(parts[1]),
        )
    if suite is SuiteId.CNSA and len(parts) == 1:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP384R1(), parts[0])
    raise CertificateRejectedError(f"KEM key has {len(parts)} parts, unexpected for {suite}")


def _contained(check: Callable[[], _T]) -> _T:
    # cryptography parses extensions lazily: a malformed or duplicated extension surfaces as
    # ValueError (or DuplicateExtension) deep inside a check. Every such surprise is a rejection.
    try:
        return check()
    except CertificateRejectedError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure means "malformed"
        raise CertificateRejectedError(f"malformed: {type(exc).__name__}: {exc}") from None


def check_root(root: x509.Certificate) -> tuple[str, SuiteId]:
    """Check that ``root`` is a well-formed self-signed root of ours; return (country, suite).

    Raises:
        CertificateRejectedError: not self-signed, not a CA, wrong key type or country.
    """
    return _contained(lambda: _check_root(root))


def _check_root(root: x509.Certificate) -> tuple[str, SuiteId]:
    suite = root_suite_for_key(root.public_key())
    country = country_of(root)
    if suite is None or country is None or not COUNTRY_RE.match(country):
        raise CertificateRejectedError("root has an unsupported key type or no country")
    try:
        root.verify_directly_issued_by(root)
        basic = root.extensions.get_extension_for_class(x509.BasicConstraints)
        usage = root.extensions.get_extension_for_class(x509.KeyUsage)
    except (x509.ExtensionNotFound, ValueError, TypeError) as exc:
        raise CertificateRejectedError(f"root is not a valid self-signed CA: {exc}") from None
    except Exception as exc:  # InvalidSignature and friends  # noqa: BLE001
        raise CertificateRejectedError(
            f"root self-signature invalid: {type(exc).__name__}"
        ) from None
    if not (
        basic.critical and basic.value.ca and usage.value.key_cert_sign and usage.value.crl_sign
    ):
        raise CertificateRejectedError("root lacks CA basicConstraints or keyCertSign/cRLSign")
    return country, suite


def _check_issued_end_entity(cert: x509.Certificate, root: x509.Certificate) -> None:
    try:
        # Issuer name == root subject, and the signature verifies under the root key.
        cert.verify_directly_issued_by(root)
    except Exception as exc:  # noqa: BLE001 - any failure means "not issued by this root"
        raise CertificateRejectedError(f"not issued by this root: {type(exc).__name__}") from None
    if cert.version is not x509.Version.v3:
        raise CertificateRejectedError("not an X.509 v3 certificate")
    for ext in cert.extensions:
        if ext.critical and ext.oid not in _UNDERSTOOD:
            raise CertificateRejectedError(f"unknown critical extension {ext.oid.dotted_string}")
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    except x509.ExtensionNotFound as exc:
        raise CertificateRejectedError(str(exc)) from None
    if basic.value.ca or not usage.value.digital_signature or usage.value.key_cert_sign:
        raise CertificateRejectedError("not an end-entity signing certificate")


def _agency_id_of(cert: x509.Certificate, country: str) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    agency_id = str(names[0].value) if len(names) == 1 else ""
    if not AGENCY_ID_RE.match(agency_id):
        raise CertificateRejectedError(f"malformed agency id {agency_id!r}")
    # MEX-* only under the MEX root: checked on the id and on the subject's O attribute.
    if agency_id.split("-", 1)[0] != country or country_of(cert) != country:
        raise CertificateRejectedError(f"agency {agency_id!r} is not under the {country} root")
    return agency_id


def verify_agency_certificate(cert: x509.Certificate, root: x509.Certificate) -> AgencyKey:
    """Verify ``cert`` as issued by ``root`` and decode it. Validity is *not* checked here.

    The trust store checks validity at the message's signing time (see docs/pki.md), which is
    why this function only checks what does not depend on time. ``root`` must already have
    passed :func:`check_root`.

    Args:
        cert: the agency certificate.
        root: the trust anchor for the certificate's country and suite family.

    Returns:
        The decoded :class:`~exchange.crypto.keys.AgencyKey`.

    Raises:
        CertificateRejectedError: any check failed (the message names it, for debug logs).
    """
    return _contained(lambda: _verify_agency_certificate(cert, root))


def _verify_agency_certificate(cert: x509.Certificate, root: x509.Certificate) -> AgencyKey:
    country, root_suite = check_root(root)
    _check_issued_end_entity(cert, root)
    agency_id = _agency_id_of(cert, country)

    try:
        binding = asn1.decode_der(AgencyKeyBindingAsn1, _ext_value(cert, OID_AGENCY_KEY_BINDING))
        rights = asn1.decode_der(PublishingRightsAsn1, _ext_value(cert, OID_PUBLISHING_RIGHTS))
        suite = SuiteId(binding.suite)
    except ValueError as exc:
        raise CertificateRejectedError(f"malformed extension: {exc}") from None
    if binding.version != BINDING_VERSION or suite is not root_suite:
        raise CertificateRejectedError(
            f"binding version {binding.version} / suite {suite} not allowed here"
        )
    if len(binding.extra_signing_keys) != _EXTRA_SIGNING_KEYS[suite.value]:
        raise CertificateRejectedError("wrong number of signing keys for the suite")

    primary = signing_public_key(cert)
    expected_primary = SuiteId.CNSA if suite is SuiteId.CNSA else SuiteId.CLASSIC
    if root_suite_for_key(primary) is not expected_primary:
        raise CertificateRejectedError("primary key type does not match the suite")
    try:
        extra = tuple(
            mldsa.MLDSA65PublicKey.from_public_bytes(k) for k in binding.extra_signing_keys
        )
        kem = _decode_kem(suite, binding.kem_key)
    except (ValueError, TypeError) as exc:
        raise CertificateRejectedError(f"malformed public key: {exc}") from None
    signing: tuple[SigningPublicKey, ...] = (primary, *extra)

    signing_raw = (raw_public_bytes(primary), *binding.extra_signing_keys)
    key_id = compute_key_id(suite, signing_raw, binding.kem_key)
    if binding.key_id.hex() != key_id:
        raise CertificateRejectedError("key id does not match the certified keys")
    if not rights.record_types or not set(rights.record_types) <= RECORD_TYPES:
        raise CertificateRejectedError("publishing rights name unknown record types")
    return AgencyKey(
        agency_id=agency_id,
        key_id=key_id,
        suite=suite,
        signing_keys=signing,
        kem_key=kem,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        may_publish=frozenset(rights.record_types),
    )
