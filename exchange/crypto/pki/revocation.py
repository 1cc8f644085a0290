"""Certificate revocation lists, signed by the issuing root.

One X.509 CRL per root (country and suite family), re-issued with a higher CRL number on each
revocation. ``cryptography`` signs and verifies CRLs with Ed25519, ML-DSA-65 and P-384 roots.

Policy (docs/pki.md "Revocation"): a key revoked at time R is refused for messages signed at
or after R. For ``keyCompromise`` (and for no stated reason, which we read as the worst case)
it is refused for every message whatever its claimed signing time, because whoever holds a
compromised key can also write any signing time. For ``superseded``,
``cessationOfOperation`` and ``affiliationChanged`` messages signed before R still verify.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from exchange.crypto.pki.algorithms import SigningPrivateKey
from exchange.crypto.pki.certificates import CertificateRejectedError, signing_public_key

__all__ = [
    "BENIGN_REASONS",
    "CRL_NEXT_UPDATE",
    "Revocation",
    "build_crl",
    "verify_crl",
]

#: Reasons after which messages signed before the revocation time stay acceptable.
BENIGN_REASONS: Final = frozenset(
    {
        x509.ReasonFlags.superseded,
        x509.ReasonFlags.cessation_of_operation,
        x509.ReasonFlags.affiliation_changed,
    }
)
#: Advertised refresh interval of a CRL (nextUpdate - thisUpdate).
CRL_NEXT_UPDATE: Final = dt.timedelta(days=30)


@dataclass(frozen=True)
class Revocation:
    """One revoked certificate, by serial number."""

    serial: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags

    @property
    def compromised(self) -> bool:
        """Whether the key must be refused for every signing time, not only from ``revoked_at``."""
        return self.reason not in BENIGN_REASONS

    def rejects(self, signed_at: dt.datetime) -> bool:
        """Whether a message signed at ``signed_at`` must be refused."""
        return self.compromised or signed_at >= self.revoked_at


def build_crl(
    *,
    issuer: x509.Certificate,
    issuer_key: SigningPrivateKey,
    revocations: Iterable[Revocation],
    number: int,
    now: dt.datetime,
) -> x509.CertificateRevocationList:
    """Sign a CRL listing ``revocations``.

    Args:
        issuer: the root certificate; issuer_key: its private key.
        revocations: every revocation of this root so far (CRLs are complete, not deltas).
        number: the CRL number, strictly greater than the previous CRL's.
        now: thisUpdate.

    Returns:
        The signed CRL.
    """
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(now)
        .next_update(now + CRL_NEXT_UPDATE)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for item in revocations:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(item.serial)
            .revocation_date(item.revoked_at)
            .add_extension(x509.CRLReason(item.reason), critical=False)
            .build()
        )
        builder = builder.add_revoked_certificate(entry)
    algorithm = hashes.SHA384() if isinstance(issuer_key, ec.EllipticCurvePrivateKey) else None
    return builder.sign(issuer_key, algorithm)


def verify_crl(
    crl: x509.CertificateRevocationList, issuer: x509.Certificate
) -> tuple[int, dict[int, Revocation]]:
    """Check ``crl``'s issuer and signature against ``issuer``; return (CRL number, revocations).

    Raises:
        CertificateRejectedError: wrong issuer, bad signature, or malformed entries.
    """
    try:
        return _verify_crl(crl, issuer)
    except CertificateRejectedError:
        raise
    except Exception as exc:  # noqa: BLE001 - lazily parsed entries fail late; all mean "malformed"
        raise CertificateRejectedError(f"malformed CRL: {type(exc).__name__}: {exc}") from None


def _verify_crl(
    crl: x509.CertificateRevocationList, issuer: x509.Certificate
) -> tuple[int, dict[int, Revocation]]:
    if crl.issuer != issuer.subject:
        raise CertificateRejectedError("CRL issuer is not this root")
    try:
        valid = crl.is_signature_valid(signing_public_key(issuer))
    except (TypeError, ValueError, CertificateRejectedError):
        valid = False
    if not valid:
        raise CertificateRejectedError("CRL signature does not verify under its root")
    try:
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        raise CertificateRejectedError("CRL has no CRL number") from None
    revoked: dict[int, Revocation] = {}
    for entry in crl:
        try:
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        except x509.ExtensionNotFound:
            reason = x509.ReasonFlags.unspecified  # no reason: assume the worst (fail closed)
        revoked[entry.serial_number] = Revocation(
            serial=entry.serial_number, revoked_at=entry.revocation_date_utc, reason=reason
        )
    return number, revoked
