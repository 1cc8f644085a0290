"""Enrollment and rotation of agency key generations, and the demo bootstrap.

Example::

    store = bootstrap_demo_pki(tmp_path, Passphrase(b"correct horse battery staple"))
    store.current_key("MEX-FGR", SuiteId.CLASSIC, at=datetime.now(UTC))
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from exchange.crypto.keys import AgencyKey, SuiteId
from exchange.crypto.pki.algorithms import ALL_SUITES
from exchange.crypto.pki.authority import (
    check_agency,
    chosen_suites,
    init_country,
    load_root,
    locked,
    operation_time,
    require_root,
)
from exchange.crypto.pki.certificates import RECORD_TYPES, build_agency_certificate
from exchange.crypto.pki.history import append_event
from exchange.crypto.pki.keystore import (
    DEFAULT_SCRYPT_LOG2_N,
    UnlockedKeystore,
    generate_agency_keys,
    store_agency_keys,
    unlock,
)
from exchange.crypto.pki.layout import PkiLayout, write_public
from exchange.crypto.pki.passphrase import Passphrase
from exchange.crypto.pki.truststore import TrustStore
from exchange.crypto.pki.verification import verify_agency_certificate
from exchange.errors import ConfigurationError

__all__ = [
    "DEFAULT_AGENCY_VALID_DAYS",
    "DEMO_AGENCIES",
    "bootstrap_demo_pki",
    "enroll_agency",
    "rotate_agency",
]

_log = logging.getLogger(__name__)

DEFAULT_AGENCY_VALID_DAYS: Final = 365
DEMO_AGENCIES: Final = ("MEX-FGR", "MEX-SSPC", "MEX-SEDENA", "USA-ATF", "USA-CBP", "USA-HSI")
_PEM = serialization.Encoding.PEM


def _check_request(may_publish: Iterable[str], valid_days: int) -> frozenset[str]:
    # Input is checked before anything on disk, so the first error names the real mistake.
    if valid_days <= 0:
        raise ConfigurationError(f"--valid-days must be positive, got {valid_days}")
    rights = frozenset(may_publish)
    if not rights:
        raise ConfigurationError("may-publish is empty; name at least one record type")
    if not rights <= RECORD_TYPES:
        raise ConfigurationError(
            f"unknown record types {sorted(rights - RECORD_TYPES)} in may-publish; "
            f"choose from {', '.join(sorted(RECORD_TYPES))}"
        )
    return rights


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
    rights = _check_request(may_publish, valid_days)
    country = agency_id.split("-", 1)[0]
    root, root_key = load_root(layout, country, suite, keystore)
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
    layout, start, chosen = PkiLayout(home), operation_time(now), chosen_suites(suites)
    check_agency(agency_id)
    _check_request(may_publish, valid_days)
    with locked(layout):
        for suite in chosen:
            existing = layout.agency_cert_dir(agency_id, suite)
            if existing.is_dir() and any(existing.glob("*.pem")):
                raise ConfigurationError(
                    f"{agency_id} is already enrolled for {suite.value}; "
                    f"run `exchange pki rotate --agency {agency_id}` for a new key generation"
                )
            require_root(layout, agency_id.split("-", 1)[0], suite)  # say which command first
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
    layout, start = PkiLayout(home), operation_time(now)
    check_agency(agency_id)
    with locked(layout):
        store = TrustStore.from_directory(layout.trust_dir)
        mine = [e for e in store.entries() if e.key.agency_id == agency_id]
        enrolled = tuple(s for s in ALL_SUITES if any(e.key.suite is s for e in mine))
        chosen = enrolled if suites is None else chosen_suites(suites)
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
    chosen = chosen_suites(suites)
    for country in ("MEX", "USA"):
        init_country(home, country, passphrase, suites=chosen, now=now, scrypt_log2_n=scrypt_log2_n)
    for agency in agencies:
        enroll_agency(home, agency, passphrase, suites=chosen, now=now)
    return TrustStore.load(home)
