"""Attacker tools for the PKI tests: certificates built outside the checks of the library."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from exchange.crypto.pki.algorithms import SigningPrivateKey
from exchange.crypto.pki.certificates import sign_certificate

Mutator = Callable[[x509.CertificateBuilder], x509.CertificateBuilder]


def name(country: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, country),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def reissue(
    template: x509.Certificate,
    *,
    issuer_name: x509.Name,
    issuer_key: SigningPrivateKey,
    subject: x509.Name | None = None,
    public_key: CertificatePublicKeyTypes | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    drop: frozenset[x509.ObjectIdentifier] = frozenset(),
    add: tuple[x509.ExtensionType, bool] | None = None,
    replace: dict[x509.ObjectIdentifier, bytes] | None = None,
) -> x509.Certificate:
    """Copy ``template`` with changes, signed by ``issuer_key`` (no library checks involved)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject or template.subject)
        .issuer_name(issuer_name)
        .public_key(public_key or template.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or template.not_valid_before_utc)
        .not_valid_after(not_after or template.not_valid_after_utc)
    )
    for ext in template.extensions:
        if ext.oid in drop:
            continue
        value = ext.value
        if replace and ext.oid in replace:
            value = x509.UnrecognizedExtension(ext.oid, replace[ext.oid])
        builder = builder.add_extension(value, critical=ext.critical)
    if add is not None:
        builder = builder.add_extension(add[0], critical=add[1])
    return sign_certificate(builder, issuer_key)
