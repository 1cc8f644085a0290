"""The transport PKI: one TLS certificate authority per country, separate from message signing.

Why a separate hierarchy (docs/decisions/0006-binational-transport-security.md): the agency
roots of :mod:`exchange.crypto.pki` certify *signing and KEM keys* and what an agency may
publish; their keys stay offline and their certificates live for years. Transport
certificates authenticate *connections* to one country's brokers, rotate often, and are
installed on servers (brokers, mirrors) that must never hold a signing root. Mixing the two
would let a broker operator mint agency identities. Both use ``cryptography`` X.509.

Keys are ECDSA P-256: every TLS stack involved (Java's JSSE for brokers and MirrorMaker,
OpenSSL inside librdkafka) supports it, which is not yet true of Ed25519 or ML-DSA in TLS.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Issued", "TransportCa", "new_transport_ca"]

#: Transport CA lifetime; the runbook rotates it with an overlap (docs/deployment.md).
CA_VALID_DAYS = 3 * 365
#: Leaf lifetime: short, because transport certificates are cheap to reissue.
LEAF_VALID_DAYS = 365
_CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Issued:
    """A leaf certificate and its private key (PKCS#8 PEM, unencrypted: handle as a secret)."""

    cert: x509.Certificate
    chain_pem: bytes
    key_pem: bytes

    def __repr__(self) -> str:
        # Never print the key, even in a debugger or a failed assertion.
        return f"Issued(subject={self.cert.subject.rfc4514_string()!r}, key=<redacted>)"

    @property
    def keystore_pem(self) -> bytes:
        """Chain then key in one file: Kafka's ``ssl.keystore.type=PEM`` format."""
        return self.chain_pem + self.key_pem


@dataclass(frozen=True)
class TransportCa:
    """A country's transport CA (certificate and key)."""

    country: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def __repr__(self) -> str:
        return f"TransportCa(country={self.country!r}, key=<redacted>)"

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return _pkcs8(self.key)

    @classmethod
    def load(cls, country: str, cert_pem: bytes, key_pem: bytes) -> TransportCa:
        """Rebuild a CA from its PEM files.

        Raises:
            ValueError: the files are not PEM.
            TypeError: the key is not an ECDSA key.
        """
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError(f"got a {type(key).__name__} transport CA key, expected ECDSA")
        return cls(country, x509.load_pem_x509_certificate(cert_pem), key)

    def issue_server(self, common_name: str, *, now: dt.datetime | None = None) -> Issued:
        """A broker certificate: SAN ``IP:127.0.0.1`` and ``DNS:localhost``, server+client auth.

        Client auth too, because brokers talk to each other and to their controllers over
        the same mTLS listeners. librdkafka checks the hostname, hence the SAN.
        """
        san = x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        )
        usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        return self._issue(common_name, usages, san, now)

    def issue_client(self, common_name: str, *, now: dt.datetime | None = None) -> Issued:
        """A client certificate whose CN becomes the Kafka principal (``User:<CN>``)."""
        return self._issue(common_name, [ExtendedKeyUsageOID.CLIENT_AUTH], None, now)

    def _issue(
        self,
        common_name: str,
        usages: list[x509.ObjectIdentifier],
        san: x509.SubjectAlternativeName | None,
        now: dt.datetime | None,
    ) -> Issued:
        start = (now or dt.datetime.now(dt.UTC)) - _CLOCK_SKEW
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(self.country, common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=LEAF_VALID_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        chain = cert.public_bytes(serialization.Encoding.PEM) + self.cert_pem
        return Issued(cert, chain, _pkcs8(key))


def new_transport_ca(country: str, *, now: dt.datetime | None = None) -> TransportCa:
    """Create ``country``'s self-signed transport CA (``CN=Exchange Transport CA <CTY>``)."""
    start = (now or dt.datetime.now(dt.UTC)) - _CLOCK_SKEW
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(country, f"Exchange Transport CA {country}")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return TransportCa(country, cert, key)


def _name(country: str, common_name: str) -> x509.Name:
    # O first, CN last in ASN.1 order: Java prints RFC 2253 in reverse ("CN=MEX-FGR,O=MEX"),
    # which is what the broker's ssl.principal.mapping.rules expects to start with CN=.
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, country),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    # A CA signs certificates and CRLs only; a leaf signs TLS handshakes (ECDHE) only.
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _pkcs8(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
