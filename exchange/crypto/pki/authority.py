"""PKI operations of a country's CA on one ``$EXCHANGE_HOME``: create roots, revoke keys.

These and :mod:`.enrollment` are the library behind ``exchange pki ...``; each takes the
home, the passphrase (as a :class:`~exchange.crypto.pki.passphrase.Passphrase`) and an
injectable ``now``, holds an exclusive lock on ``pki/.lock`` while it changes files, and
appends one history line per change. The helpers here are shared with :mod:`.enrollment`.

Example::

    init_country(home, "MEX", passphrase)
    revoke_key(home, "MEX-FGR", key_id, passphrase, reason=x509.ReasonFlags.superseded)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from exchange.crypto.keys import SuiteId
from exchange.crypto.pki.algorithms import ALL_SUITES, SigningPrivateKey
from exchange.crypto.pki.ca import create_root, generate_root_key
from exchange.crypto.pki.certificates import (
    CertificateRejectedError,
)
from exchange.crypto.pki.history import append_event
from exchange.crypto.pki.keystore import (
    DEFAULT_SCRYPT_LOG2_N,
    UnlockedKeystore,
    as_signing_key,
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
    "DEFAULT_ROOT_VALID_DAYS",
    "check_agency",
    "chosen_suites",
    "init_country",
    "load_root",
    "locked",
    "operation_time",
    "require_root",
    "revoke_key",
]

_log = logging.getLogger(__name__)

DEFAULT_ROOT_VALID_DAYS: Final = 3650
_PEM = serialization.Encoding.PEM


def operation_time(now: dt.datetime | None) -> dt.datetime:
    # X.509 times have one-second resolution; truncating keeps "now" and the certificate equal.
    value = dt.datetime.now(dt.UTC) if now is None else now
    if value.tzinfo is None:
        raise ValueError("got a naive datetime for now, expected a timezone-aware one")
    return value.astimezone(dt.UTC).replace(microsecond=0)


@contextlib.contextmanager
def locked(layout: PkiLayout) -> Iterator[None]:
    make_dirs(layout.root)
    fd = os.open(layout.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        # One change at a time: two concurrent revocations must not both write CRL n+1.
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def check_agency(agency_id: str) -> str:
    if not AGENCY_ID_RE.match(agency_id):
        raise ConfigurationError(
            f"agency id {agency_id!r} is malformed; use <MEX|USA>-<AGENCY>, e.g. MEX-FGR"
        )
    return agency_id


def chosen_suites(suites: Iterable[SuiteId | str]) -> tuple[SuiteId, ...]:
    chosen = tuple(dict.fromkeys(SuiteId(s) for s in suites))
    if not chosen:
        raise ConfigurationError("no suite selected; choose classic, pq-hybrid and/or cnsa")
    return chosen


def require_root(layout: PkiLayout, country: str, suite: SuiteId) -> Path:
    """The path of ``country``'s root certificate for ``suite``.

    Raises:
        ConfigurationError: there is none (with the command that creates it).
    """
    cert_path = layout.root_cert(country, suite)
    if not cert_path.exists():
        raise ConfigurationError(
            f"no {suite.value} root CA for {country} under {layout.root}; "
            f"run `exchange pki init-country --country {country}` first"
        )
    return cert_path


def load_root(
    layout: PkiLayout, country: str, suite: SuiteId, keystore: UnlockedKeystore
) -> tuple[x509.Certificate, SigningPrivateKey]:
    cert_path = require_root(layout, country, suite)
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
    layout, start, chosen = PkiLayout(home), operation_time(now), chosen_suites(suites)
    with locked(layout):
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
    layout, when = PkiLayout(home), operation_time(now)
    check_agency(agency_id)
    with locked(layout):
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
        root, root_key = load_root(layout, country, suite, keystore)
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
