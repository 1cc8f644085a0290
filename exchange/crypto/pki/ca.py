"""Root certificate authorities: one per country and suite family.

A country runs three roots so that each suite's chain uses that suite's own algorithm family:
an Ed25519 root for ``classic``, an ML-DSA-65 root for ``pq-hybrid`` (the chain is then
post-quantum too, not only the message signatures) and a P-384 root for ``cnsa``.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa
from cryptography.x509.oid import NameOID

from exchange.crypto.keys import SuiteId
from exchange.crypto.pki.algorithms import SigningPrivateKey
from exchange.crypto.pki.certificates import key_usage, sign_certificate
from exchange.crypto.pki.layout import COUNTRY_RE

__all__ = ["create_root", "generate_root_key", "root_name"]


def generate_root_key(suite: SuiteId) -> SigningPrivateKey:
    """A fresh root signing key of ``suite``'s family."""
    suite = SuiteId(suite)
    if suite is SuiteId.CLASSIC:
        return ed25519.Ed25519PrivateKey.generate()
    if suite is SuiteId.PQ_HYBRID:
        return mldsa.MLDSA65PrivateKey.generate()
    return ec.generate_private_key(ec.SECP384R1())


def root_name(country: str, suite: SuiteId) -> x509.Name:
    """``CN=Exchange Root CA <CTY> <suite>, O=<CTY>``."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, country),
            x509.NameAttribute(
                NameOID.COMMON_NAME, f"Exchange Root CA {country} {SuiteId(suite).value}"
            ),
        ]
    )


def create_root(
    country: str,
    suite: SuiteId,
    key: SigningPrivateKey,
    *,
    not_before: dt.datetime,
    valid_days: int,
) -> x509.Certificate:
    """Self-sign a root certificate for ``country`` and ``suite``.

    Args:
        country: ``MEX`` or ``USA``.
        suite: the suite family; ``key`` must be of its type (see :func:`generate_root_key`).
        key: the root private key.
        not_before: start of validity (UTC).
        valid_days: length of validity in days.

    Returns:
        The root certificate (CA, pathLen 0: roots certify agencies directly, never sub-CAs).

    Raises:
        ValueError: unknown country, non-positive ``valid_days``.
    """
    if not COUNTRY_RE.match(country):
        raise ValueError(f"got country {country!r}, expected MEX or USA")
    if valid_days <= 0:
        raise ValueError(f"got valid_days={valid_days}, expected a positive number")
    name = root_name(country, suite)
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    return sign_certificate(builder, key)
