"""PKI operations on one ``$EXCHANGE_HOME``: create roots, enroll, rotate, revoke.

These are the library behind ``exchange pki ...``; each takes the home, the passphrase (as a
:class:`~exchange.crypto.pki.passphrase.Passphrase`) and an injectable ``now``, holds an
exclusive lock on ``pki/.lock`` while it changes files, and appends one history line per change.

Example::

    store = bootstrap_demo_pki(tmp_path, Passphrase(b"correct horse battery staple"))
    store.current_key("MEX-FGR", SuiteId.CLASSIC, at=datetime.now(UTC))
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from exchange.crypto.keys import AgencyKey, SuiteId
from exchange.crypto.pki.algorithms import ALL_SUITES, SigningPrivateKey
from exchange.crypto.pki.ca import create_root, generate_root_key
from exchange.crypto.pki.certificates import (
    RECORD_TYPES,
    CertificateRejectedError,
    build_agency_certificate,
    verify_agency_certificate,
)
from exchange.crypto.pki.history import append_event
from exchange.crypto.pki.keystore import (
    DEFAULT_SCRYPT_LOG2_N,
    UnlockedKeystore,
    as_signing_key,
    generate_agency_keys,
    store_agency_keys,
    unlock,
)
from exchange.crypto.pki.layout import (
    AGENCY_ID_RE,
    COUNTRY_RE,
    PkiLayout,
    make_dirs,
    write_private,
    write_public,
)
from exchange.crypto.pki.passphrase import Passphrase
from exchange.crypto.pki.revocation import Revocation, build_crl, verify_crl
from exchange.crypto.pki.truststore import TrustStore
from exchange.errors import ConfigurationError

__all__ = [
    "DEFAULT_AGENCY_VALID_DAYS",
    "DEFAULT_ROOT_VALID_DAYS",
    "DEMO_AGENCIES",
    "bootstrap_demo_pki",
    "enroll_agency",
    "init_country",
    "revoke_key",
    "rotate_agency",
]

_log = logging.getLogger(__name__)

DEFAULT_ROOT_VALID_DAYS: Final = 3650
DEFAULT_AGENCY_VALID_DAYS: Final = 365
DEMO_AGENCIES: Final = ("MEX-FGR", "MEX-SSPC", "MEX-SEDENA", "USA-ATF", "USA-CBP", "USA-HSI")
_PEM = serialization.Encoding.PEM


def _now(now: dt.datetime | None) -> dt.datetime:
    # X.509 times have one-second resolution; truncating keeps "now" and the certificate equal.
    value = dt.datetime.now(dt.UTC) if now is None else now
    if value.tzinfo is None:
        raise ValueError("got a naive datetime for now, expected a timezone-aware one")
    return value.astimezone(dt.UTC).replace(microsecond=0)


@contextlib.contextmanager
def _locked(layout: PkiLayout) -> Iterator[None]:
    make_dirs(layout.root)
    fd = os.open(layout.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        # One change at a time: two concurrent revocations must not both write CRL n+1.
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _check_agency(agency_id: str) -> str:
    if not AGENCY_ID_RE.match(agency_id):
        raise ConfigurationError(
            f"agency id {agency_id!r} is malformed; use <MEX|USA>-<AGENCY>, e.g. MEX-FGR"
        )
    return agency_id


def _suites(suites: Iterable[SuiteId | str]) -> tuple[SuiteId, ...]:
    chosen = tuple(dict.fromkeys(SuiteId(s) for s in suites))
    if not chosen:
        raise ConfigurationError("no suite selected; choose classic, pq-hybrid and/or cnsa")
    return chosen


def _load_root(
    layout: PkiLayout, country: str, suite: SuiteId, keystore: UnlockedKeystore
) -> tuple[x509.Certificate, SigningPrivateKey]:
    cert_path = layout.root_cert(country, suite)
    if not cert_path.exists():
        raise ConfigurationError(
            f"no {suite.value} root CA for {country} under {layout.root}; "
            f"run `exchange pki init-country --country {country}` first"
        )
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError:
        raise ConfigurationError(f"root certificate {cert_path} is corrupt; restore it") from None
    key = as_signing_key(keystore.decrypt(layout.root_key(country, suite)))
    if key.public_key() != cert.public_key():
        raise ConfigurationError(
            f"root key {layout.root_key(country, suite)} does not match {cert_path}; "
            "restore both from the same backup"
        )
    return cert, key


def init_country(
    home: Path,
    country: str,
    passphrase: Passphrase,
    *,
    suites: Iterable[SuiteId | str] = ALL_SUITES,
    valid_days: int = DEFAULT_ROOT_VALID_DAYS,
    now: dt.datetime | None = None,
    scrypt_log2_n: int = DEFAULT_SCRYPT_LOG2_N,
) -> tuple[x509.Certificate, ...]:
    """Create ``country``'s root CAs (one per suite) and their empty CRLs.

    Args:
        home: ``$EXCHANGE_HOME``.
        country: ``MEX`` or ``USA``.
        passphrase: protects the root private keys (and creates the key store if new).
        suites: suite families to create roots for.
        valid_days: root validity.
        now: start of validity (default: the current time).
        scrypt_log2_n: passphrase-stretching cost if the key store is created now.

    Returns:
        The new root certificates.

    Raises:
        ConfigurationError: unknown country, a root already exists (nothing is overwritten),
            or the passphrase does not unlock the existing key store.
    """
    if not COUNTRY_RE.match(country):
        raise ConfigurationError(f"country {country!r} is not served; use MEX or USA")
    layout, start, chosen = PkiLayout(home), _now(now), _suites(suites)
    with _locked(layout):
        for suite in chosen:
            for path in (layout.root_cert(country, suite), layout.root_key(country, suite)):
                if path.exists():
                    raise ConfigurationError(
                        f"a {suite.value} root CA for {country} already exists at {path}; "
                        "refusing to overwrite it (move it away yourself to start over)"
                    )
        keystore = unlock(layout, passphrase, create_log2_n=scrypt_log2_n)
        roots = []
        for suite in chosen:
            key = generate_root_key(suite)
            cert = create_root(country, suite, key, not_before=start, valid_days=valid_days)
            write_private(layout.root_key(country, suite), keystore.encrypt(key))
            write_public(layout.root_cert(country, suite), cert.public_bytes(_PEM))
            crl = build_crl(issuer=cert, issuer_key=key, revocations=(), number=1, now=start)
            write_public(layout.crl(country, suite), crl.public_bytes(_PEM))
            append_event(
                layout,
                "init-country",
                at=start,
                country=country,
                suite=suite.value,
                root_sha256=cert.fingerprint(hashes.SHA256()).hex(),
                not_after=cert.not_valid_after_utc.isoformat(),
            )
            roots.append(cert)
        return tuple(roots)


def _issue(
    layout: PkiLayout,
    keystore: UnlockedKeystore,
    agency_id: str,
    suite: SuiteId,
    *,
    may_publish: Iterable[str],
    start: dt.datetime,
    valid_days: int,
) -> tuple[AgencyKey, x509.Certificate]:
    if valid_days <= 0:
        raise ConfigurationError(f"--valid-days must be positive, got {valid_days}")
    rights = frozenset(may_publish)
    if not rights or not rights <= RECORD_TYPES:
        raise ConfigurationError(
            f"unknown record types {sorted(rights - RECORD_TYPES)} in may-publish; "
            f"choose from {', '.join(sorted(RECORD_TYPES))}"
            if rights
            else "may-publish is empty; name at least one record type"
        )
    country = agency_id.split("-", 1)[0]
    root, root_key = _load_root(layout, country, suite, keystore)
    end = start + dt.timedelta(days=valid_days)
    if end > root.not_valid_after_utc:
        # A certificate cannot outlive its root; say so rather than issue a dead tail.
        _log.warning(
            "%s %s validity clipped to the root's end %s",
            agency_id,
            suite,
            root.not_valid_after_utc,
        )
        end = root.not_valid_after_utc
    keys = generate_agency_keys(suite)
    cert = build_agency_certificate(
        agency_id=agency_id,
        keys=keys.public(),
        may_publish=rights,
        issuer=root,
        issuer_key=root_key,
        not_before=start,
        not_after=end,
    )
    agency_key = verify_agency_certificate(cert, root)  # never hand out what we would not accept
    store_agency_keys(layout, agency_id, keys, keystore)
    write_public(layout.agency_cert(agency_id, suite, agency_key.key_id), cert.public_bytes(_PEM))
    return agency_key, cert


def _history_fields(key: AgencyKey, cert: x509.Certificate) -> dict[str, str | list[str]]:
    return {
        "agency": key.agency_id,
        "suite": key.suite.value,
        "key_id": key.key_id,
        "serial": format(cert.serial_number, "x"),
        "not_before": key.not_before.isoformat(),
        "not_after": key.not_after.isoformat(),
        "may_publish": sorted(key.may_publish),
    }


def enroll_agency(
    home: Path,
    agency_id: str,
    passphrase: Passphrase,
    *,
    suites: Iterable[SuiteId | str] = ALL_SUITES,
    may_publish: Iterable[str] = RECORD_TYPES,
    valid_days: int = DEFAULT_AGENCY_VALID_DAYS,
    now: dt.datetime | None = None,
) -> tuple[AgencyKey, ...]:
    """Generate an agency's first key generation for each suite and certify it.

    Args:
        home: ``$EXCHANGE_HOME`` (must hold the agency's country roots).
        agency_id: ``<MEX|USA>-<AGENCY>``.
        passphrase: unlocks the root keys and encrypts the new private keys.
        suites: suites to enroll for (default all three).
        may_publish: record types the agency may publish (default all five).
        valid_days: validity of the certificates, starting ``now``.
        now: start of validity (default: the current time).

    Returns:
        The new key generations, one per suite.

    Raises:
        ConfigurationError: malformed agency id or record types, no root for the country, the
            agency is already enrolled for a suite (use :func:`rotate_agency`), wrong passphrase.
    """
    layout, start, chosen = PkiLayout(home), _now(now), _suites(suites)
    _check_agency(agency_id)
    with _locked(layout):
        for suite in chosen:
            existing = layout.agency_cert_dir(agency_id, suite)
            if existing.is_dir() and any(existing.glob("*.pem")):
                raise ConfigurationError(
                    f"{agency_id} is already enrolled for {suite.value}; "
                    f"run `exchange pki rotate --agency {agency_id}` for a new key generation"
                )
        keystore = unlock(layout, passphrase)
        issued = []
        for suite in chosen:
            key, cert = _issue(
                layout,
                keystore,
                agency_id,
                suite,
                may_publish=may_publish,
                start=start,
                valid_days=valid_days,
            )
            append_event(layout, "enroll", at=start, **_history_fields(key, cert))
            issued.append(key)
        return tuple(issued)


def rotate_agency(
    home: Path,
    agency_id: str,
    passphrase: Passphrase,
    *,
    suites: Iterable[SuiteId | str] | None = None,
    valid_days: int | None = None,
    now: dt.datetime | None = None,
) -> tuple[AgencyKey, ...]:
    """Start a new key generation now; older generations stay valid until they expire.

    Publishing rights carry over from the newest existing generation, and so does the length
    of validity unless ``valid_days`` is given.

    Args:
        home: ``$EXCHANGE_HOME``.
        agency_id: an enrolled agency.
        passphrase: unlocks the root keys and encrypts the new private keys.
        suites: suites to rotate (default: every suite the agency is enrolled for).
        valid_days: validity of the new generation.
        now: start of validity of the new generation (default: the current time).

    Returns:
        The new key generations.

    Raises:
        ConfigurationError: the agency is not enrolled (for a requested suite), wrong passphrase.
    """
    layout, start = PkiLayout(home), _now(now)
    _check_agency(agency_id)
    with _locked(layout):
        store = TrustStore.from_directory(layout.trust_dir)
        mine = [e for e in store.entries() if e.key.agency_id == agency_id]
        enrolled = tuple(s for s in ALL_SUITES if any(e.key.suite is s for e in mine))
        chosen = enrolled if suites is None else _suites(suites)
        missing = [s.value for s in chosen if s not in enrolled]
        if not chosen or missing:
            raise ConfigurationError(
                f"{agency_id} is not enrolled for {', '.join(missing) or 'any suite'}; "
                f"run `exchange pki enroll --agency {agency_id}` first"
            )
        keystore = unlock(layout, passphrase)
        issued = []
        for suite in chosen:
            newest = max((e for e in mine if e.key.suite is suite), key=lambda e: e.key.not_before)
            days = valid_days or max(1, (newest.key.not_after - newest.key.not_before).days)
            key, cert = _issue(
                layout,
                keystore,
                agency_id,
                suite,
                may_publish=newest.key.may_publish,
                start=start,
                valid_days=days,
            )
            append_event(
                layout,
                "rotate",
                at=start,
                previous_key_id=newest.key.key_id,
                **_history_fields(key, cert),
            )
            issued.append(key)
        return tuple(issued)


def revoke_key(
    home: Path,
    agency_id: str,
    key_id: str,
    passphrase: Passphrase,
    *,
    reason: x509.ReasonFlags = x509.ReasonFlags.key_compromise,
    now: dt.datetime | None = None,
) -> Revocation:
    """Revoke one key generation by re-issuing its root's CRL with a higher number.

    Args:
        home: ``$EXCHANGE_HOME`` (must hold the issuing root's private key).
        agency_id: the agency.
        key_id: the generation to revoke (see ``exchange pki list``).
        passphrase: unlocks the root key.
        reason: the CRL reason; ``key_compromise`` (default) refuses the key for every signing
            time, benign reasons only from ``now`` on (docs/pki.md "Revocation").
        now: the revocation time (default: the current time).

    Returns:
        The recorded revocation.

    Raises:
        ConfigurationError: no such verified generation, already revoked, no root key here,
            wrong passphrase.
    """
    layout, when = PkiLayout(home), _now(now)
    _check_agency(agency_id)
    with _locked(layout):
        store = TrustStore.from_directory(layout.trust_dir)
        entry = store.entry(agency_id, key_id)
        if entry is None:
            raise ConfigurationError(
                f"no trusted certificate for {agency_id} key {key_id}; see `exchange pki list`"
            )
        if entry.revocation is not None:
            raise ConfigurationError(f"{agency_id} key {key_id} is already revoked")
        suite, country = entry.key.suite, entry.key.country
        keystore = unlock(layout, passphrase)
        root, root_key = _load_root(layout, country, suite, keystore)
        crl_path = layout.crl(country, suite)
        try:
            number, revoked = verify_crl(x509.load_pem_x509_crl(crl_path.read_bytes()), root)
        except (OSError, ValueError, CertificateRejectedError) as exc:
            # Never build on a CRL we cannot trust: it might have lost earlier revocations.
            raise ConfigurationError(
                f"the CRL {crl_path} cannot be used ({exc}); restore it from backup, then retry"
            ) from None
        revocation = Revocation(
            serial=entry.certificate.serial_number, revoked_at=when, reason=reason
        )
        revoked[revocation.serial] = revocation
        crl = build_crl(
            issuer=root,
            issuer_key=root_key,
            revocations=revoked.values(),
            number=number + 1,
            now=when,
        )
        write_public(layout.crl(country, suite), crl.public_bytes(_PEM), replace=True)
        append_event(
            layout,
            "revoke",
            at=when,
            agency=agency_id,
            suite=suite.value,
            key_id=key_id,
            serial=format(revocation.serial, "x"),
            reason=reason.value,
            crl_number=number + 1,
        )
        return revocation


def bootstrap_demo_pki(
    home: Path,
    passphrase: Passphrase,
    *,
    agencies: Sequence[str] = DEMO_AGENCIES,
    suites: Iterable[SuiteId | str] = ALL_SUITES,
    now: dt.datetime | None = None,
    scrypt_log2_n: int = DEFAULT_SCRYPT_LOG2_N,
) -> TrustStore:
    """Create both countries' roots and enroll ``agencies`` in one go (demo and tests).

    Returns:
        The trust store of ``home``, freshly loaded from disk.

    Raises:
        ConfigurationError: as :func:`init_country` and :func:`enroll_agency`.
    """
    chosen = _suites(suites)
    for country in ("MEX", "USA"):
        init_country(home, country, passphrase, suites=chosen, now=now, scrypt_log2_n=scrypt_log2_n)
    for agency in agencies:
        enroll_agency(home, agency, passphrase, suites=chosen, now=now)
    return TrustStore.load(home)
