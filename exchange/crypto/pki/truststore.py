"""The trust store: verified agency keys from both countries' roots, CRLs and certificates.

It implements :class:`exchange.crypto.keys.TrustResolver`. Everything is verified once, when
the store is built (roots self-signed and well-formed, each CRL signed by its root, each agency
certificate issued by the root of its own country and suite family); lookups then only check
time and revocation. It needs public material only, so auditors can build one.

Example::

    store = TrustStore.load(Path("/srv/exchange"))
    key = store.signing_key("MEX-FGR", key_id, at=header.created)   # raises IntegrityError
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from exchange.crypto.keys import AgencyKey, SuiteId
from exchange.crypto.pki.certificates import CertificateRejectedError
from exchange.crypto.pki.layout import PkiLayout
from exchange.crypto.pki.revocation import Revocation, verify_crl
from exchange.crypto.pki.verification import check_root, verify_agency_certificate
from exchange.errors import IntegrityError, IntegrityReason, PolicyError

__all__ = ["KeyStatus", "TrustEntry", "TrustStore"]

_log = logging.getLogger(__name__)

#: Size bounds on trust files, checked before parsing (they may come from a peer).
_MAX_CERT_BYTES: Final = 64 * 1024
_MAX_CRL_BYTES: Final = 4 * 1024 * 1024

_SHA256: Final = hashes.SHA256()

KeyStatus = Literal["valid", "superseded", "revoked", "expired", "not-yet-valid"]


def _aware(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise ValueError("got a naive datetime, expected a timezone-aware one (UTC)")
    return at


@dataclass(frozen=True)
class TrustEntry:
    """One verified agency key generation with its certificate, root and revocation (if any)."""

    key: AgencyKey
    certificate: x509.Certificate
    root: x509.Certificate
    revocation: Revocation | None

    def valid_at(self, at: dt.datetime) -> bool:
        """Whether both the certificate and its root are within validity at ``at``."""
        return all(
            c.not_valid_before_utc <= at <= c.not_valid_after_utc
            for c in (self.certificate, self.root)
        )

    def usable_at(self, at: dt.datetime) -> bool:
        """Valid at ``at`` and not refused by its revocation for a message signed at ``at``."""
        return self.valid_at(at) and not (self.revocation and self.revocation.rejects(at))


class TrustStore:
    """Verified trust material of both countries.

    Args:
        roots: root CA certificates (trust anchors; one per country and suite family).
        certificates: agency certificates; those that fail verification are left out.
        crls: CRLs; each root needs a valid one, or its agencies are left out (fail closed).

    Malformed or unverifiable items never raise: they are logged and listed in
    :attr:`problems`, and whatever they would have vouched for is untrusted.
    """

    def __init__(
        self,
        *,
        roots: Iterable[x509.Certificate],
        certificates: Iterable[x509.Certificate],
        crls: Iterable[x509.CertificateRevocationList],
    ) -> None:
        self.problems: list[str] = []
        anchors: list[x509.Certificate] = []
        for root in roots:
            try:
                check_root(root)
            except CertificateRejectedError as exc:
                self._problem(f"root {root.subject.rfc4514_string()} rejected: {exc}")
                continue
            anchors.append(root)

        revocations = self._newest_crls(anchors, list(crls))
        usable = [r for r in anchors if r.fingerprint(_SHA256) in revocations]
        for root in anchors:
            if root not in usable:
                self._problem(
                    f"no valid CRL for {root.subject.rfc4514_string()}; its agencies are untrusted"
                )
        self._roots: tuple[x509.Certificate, ...] = tuple(usable)

        by_id: dict[tuple[str, str], list[TrustEntry]] = {}
        for cert in certificates:
            entry = self._verify(cert, revocations)
            if entry is not None:
                by_id.setdefault((entry.key.agency_id, entry.key.key_id), []).append(entry)
        self._entries: dict[tuple[str, str], TrustEntry] = {}
        for (agency, key_id), found in by_id.items():
            if len({e.certificate.fingerprint(_SHA256) for e in found}) > 1:
                # Two certificates for one key id would make "the key valid at T" ambiguous.
                self._problem(f"{agency} key {key_id} has several certificates; all ignored")
                continue
            self._entries[(agency, key_id)] = found[0]

    def _newest_crls(
        self, anchors: list[x509.Certificate], crls: list[x509.CertificateRevocationList]
    ) -> dict[bytes, dict[int, Revocation]]:
        # CRLs are complete, so keep the newest valid one per root (by CRL number).
        revocations: dict[bytes, dict[int, Revocation]] = {}
        numbers: dict[bytes, int] = {}
        for root in anchors:
            fingerprint = root.fingerprint(_SHA256)
            for crl in crls:
                if crl.issuer != root.subject:
                    continue
                try:
                    number, revoked = verify_crl(crl, root)
                except CertificateRejectedError as exc:
                    self._problem(f"CRL of {root.subject.rfc4514_string()} rejected: {exc}")
                    continue
                if number > numbers.get(fingerprint, -1):
                    numbers[fingerprint], revocations[fingerprint] = number, revoked
        return revocations

    def _problem(self, text: str) -> None:
        _log.warning("trust store: %s", text)
        self.problems.append(text)

    def _verify(
        self, cert: x509.Certificate, revocations: dict[bytes, dict[int, Revocation]]
    ) -> TrustEntry | None:
        reasons: list[str] = []
        for root in self._roots:
            if root.subject != cert.issuer:
                continue
            try:
                key = verify_agency_certificate(cert, root)
            except CertificateRejectedError as exc:
                reasons.append(str(exc))
                continue
            revocation = revocations[root.fingerprint(_SHA256)].get(cert.serial_number)
            return TrustEntry(key=key, certificate=cert, root=root, revocation=revocation)
        why = "; ".join(reasons) or "no trusted root with that issuer name"
        self._problem(f"certificate {cert.subject.rfc4514_string()} rejected: {why}")
        return None

    @classmethod
    def from_directory(cls, trust_dir: Path) -> TrustStore:
        """Load ``roots/*/*.pem``, ``crls/*/*.pem`` and ``agencies/*/*/*.pem`` under ``trust_dir``.

        Unreadable, oversized or unparsable files are skipped and listed in :attr:`problems`.
        """
        unreadable: list[str] = []

        def read(pattern: str, limit: int) -> list[bytes]:
            out: list[bytes] = []
            for path in sorted(trust_dir.glob(pattern)):
                try:
                    too_large = path.stat().st_size > limit
                    if not too_large:
                        out.append(path.read_bytes())
                except OSError as exc:
                    unreadable.append(f"{path}: {exc.strerror}")
                    continue
                if too_large:
                    unreadable.append(f"{path}: larger than {limit} bytes")
            return out

        def parse_certs(blobs: list[bytes]) -> list[x509.Certificate]:
            certs = []
            for blob in blobs:
                try:
                    certs.append(x509.load_pem_x509_certificate(blob))
                except ValueError as exc:
                    unreadable.append(f"unparsable certificate: {exc}")
            return certs

        crls = []
        for blob in read("crls/*/*.pem", _MAX_CRL_BYTES):
            try:
                crls.append(x509.load_pem_x509_crl(blob))
            except ValueError as exc:
                unreadable.append(f"unparsable CRL: {exc}")
        store = cls(
            roots=parse_certs(read("roots/*/*.pem", _MAX_CERT_BYTES)),
            certificates=parse_certs(read("agencies/*/*/*.pem", _MAX_CERT_BYTES)),
            crls=crls,
        )
        for text in unreadable:
            store._problem(text)
        return store

    @classmethod
    def load(cls, home: Path) -> TrustStore:
        """The trust store of ``$EXCHANGE_HOME`` (``home/pki/trust``)."""
        return cls.from_directory(PkiLayout(home).trust_dir)

    # -- TrustResolver ---------------------------------------------------------------------

    def signing_key(self, agency_id: str, key_id: str, *, at: dt.datetime) -> AgencyKey:
        """Key ``key_id`` of ``agency_id``, valid and unrevoked for a message signed at ``at``.

        Args:
            agency_id: the sender agency from the signed header.
            key_id: the sender key id from the signed header.
            at: the signing time claimed by the signed header (timezone-aware).

        Returns:
            The verified key generation.

        Raises:
            IntegrityError: ``UNTRUSTED_SENDER`` (no verified certificate), ``REVOKED_KEY`` (see
                docs/pki.md "Revocation") or ``KEY_NOT_VALID_AT_SIGNING_TIME``.
            ValueError: ``at`` is naive.
        """
        at = _aware(at)
        entry = self._entries.get((agency_id, key_id))
        if entry is None:
            raise IntegrityError(IntegrityReason.UNTRUSTED_SENDER)
        # Revocation first: for a compromised key it is the more telling reason in the audit log.
        if entry.revocation is not None and entry.revocation.rejects(at):
            raise IntegrityError(IntegrityReason.REVOKED_KEY)
        if not entry.valid_at(at):
            raise IntegrityError(IntegrityReason.KEY_NOT_VALID_AT_SIGNING_TIME)
        return entry.key

    def current_key(self, agency_id: str, suite: SuiteId, *, at: dt.datetime) -> AgencyKey:
        """The newest generation of ``agency_id`` for ``suite`` usable at ``at``.

        "Newest" is the latest ``not_before`` (rotation starts a generation now), ties broken
        by the certificate serial, which starts with the issuance time (see ``issue_serial``).

        Raises:
            PolicyError: the agency is unknown or has no usable key for ``suite`` at ``at``.
            ValueError: ``at`` is naive.
        """
        at = _aware(at)
        usable = [
            e
            for e in self._entries.values()
            if e.key.agency_id == agency_id and e.key.suite == suite and e.usable_at(at)
        ]
        if not usable:
            raise PolicyError(
                f"{agency_id} has no valid {SuiteId(suite).value} key at {at.isoformat()}; "
                f"run `exchange pki enroll --agency {agency_id}` or `exchange pki rotate`"
            )
        best = max(usable, key=lambda e: (e.key.not_before, e.certificate.serial_number))
        return best.key

    def agencies(self) -> frozenset[str]:
        """Every agency with at least one verified certificate."""
        return frozenset(agency for agency, _ in self._entries)

    # -- inspection (CLI `pki list`, audits) -------------------------------------------------

    def entries(self) -> tuple[TrustEntry, ...]:
        """Every verified key generation, sorted by agency, suite and start of validity."""
        return tuple(
            sorted(
                self._entries.values(),
                key=lambda e: (e.key.agency_id, e.key.suite.value, e.key.not_before),
            )
        )

    def entry(self, agency_id: str, key_id: str) -> TrustEntry | None:
        """The verified entry for ``key_id`` of ``agency_id``, if any."""
        return self._entries.get((agency_id, key_id))

    def roots(self) -> tuple[x509.Certificate, ...]:
        """The usable roots (each with a valid CRL)."""
        return self._roots

    def status(self, entry: TrustEntry, *, at: dt.datetime) -> KeyStatus:
        """Human status of ``entry`` at ``at`` for listings."""
        at = _aware(at)
        if entry.revocation is not None and entry.revocation.revoked_at <= at:
            return "revoked"
        if at > entry.key.not_after:
            return "expired"
        if at < entry.key.not_before:
            return "not-yet-valid"
        try:
            current = self.current_key(entry.key.agency_id, entry.key.suite, at=at)
        except PolicyError:
            return "valid"  # unreachable in practice: entry itself is usable
        return "valid" if current.key_id == entry.key.key_id else "superseded"
