"""``exchange pki``: country roots, agency enrollment, rotation, revocation, listing.

Everything lives under ``$EXCHANGE_HOME/pki`` (docs/pki.md). The passphrase that encrypts
private keys comes from ``EXCHANGE_PKI_PASSPHRASE_FILE`` (first line of the file) or
``EXCHANGE_PKI_PASSPHRASE``, read once through the settings; it is never a flag, so it never
lands in argv, shell history or ``ps``. Results scripts read (key ids, ``list``) go to stdout;
notes for humans go to stderr.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import stat

import click
from cryptography import x509
from rich.console import Console
from rich.table import Table

from exchange.cli._context import CliContext, pass_cli
from exchange.crypto.keys import AgencyKey
from exchange.crypto.pki import (
    ALL_SUITES,
    RECORD_TYPES,
    Passphrase,
    TrustStore,
    enroll_agency,
    init_country,
    revoke_key,
    rotate_agency,
)
from exchange.crypto.pki.authority import DEFAULT_ROOT_VALID_DAYS
from exchange.crypto.pki.enrollment import DEFAULT_AGENCY_VALID_DAYS
from exchange.crypto.pki.keystore import DEFAULT_SCRYPT_LOG2_N
from exchange.errors import ConfigurationError
from exchange.settings import ExchangeSettings

__all__ = ["passphrase_from_settings", "pki"]

_log = logging.getLogger(__name__)

#: scrypt cost for a new key store (module-level so hermetic tests can lower it).
_SCRYPT_LOG2_N = DEFAULT_SCRYPT_LOG2_N

_SUITE = click.Choice([s.value for s in ALL_SUITES])
#: CRL reasons in RFC 5280 spelling, as operators know them.
_REASONS = {
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "unspecified": x509.ReasonFlags.unspecified,
}


def passphrase_from_settings(settings: ExchangeSettings) -> Passphrase:
    """The key-store passphrase from ``EXCHANGE_PKI_PASSPHRASE_FILE`` or ``..._PASSPHRASE``.

    Raises:
        ConfigurationError: neither is set, the file cannot be read, or the passphrase is too
            short. Messages name the variable, never the value.
    """
    if settings.pki_passphrase_file is not None:
        path = settings.pki_passphrase_file
        try:
            mode = path.stat().st_mode
            first_line = path.read_bytes().splitlines()[:1]
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read EXCHANGE_PKI_PASSPHRASE_FILE {path}: {exc.strerror}"
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            _log.warning("passphrase file %s is readable by others; chmod 600 it", path)
        value = first_line[0] if first_line else b""
        source = f"EXCHANGE_PKI_PASSPHRASE_FILE ({path})"
    elif settings.pki_passphrase is not None:
        value = settings.pki_passphrase.get_secret_value().encode("utf-8")
        source = "EXCHANGE_PKI_PASSPHRASE"
    else:
        raise ConfigurationError(
            "no key-store passphrase; set EXCHANGE_PKI_PASSPHRASE_FILE to a file holding it "
            "(or EXCHANGE_PKI_PASSPHRASE)"
        )
    try:
        return Passphrase(value)
    except ValueError as exc:
        raise ConfigurationError(f"the passphrase from {source} is unusable: {exc}") from None


def _echo_keys(keys: tuple[AgencyKey, ...], verb: str) -> None:
    for key in keys:
        click.echo(
            f"{verb} {key.agency_id} {key.suite.value} key {key.key_id} "
            f"valid {key.not_before.isoformat()} .. {key.not_after.isoformat()}"
        )


@click.group()
def pki() -> None:
    """Country root CAs, agency certificates and keys under $EXCHANGE_HOME/pki."""


@pki.command("init-country")
@click.option("--country", type=click.Choice(["MEX", "USA"]), required=True)
@click.option("--suite", "suites", type=_SUITE, multiple=True, help="Default: all three.")
@click.option(
    "--valid-days", type=click.IntRange(min=1), default=DEFAULT_ROOT_VALID_DAYS, show_default=True
)
@pass_cli
def init_country_cmd(
    cli: CliContext, country: str, suites: tuple[str, ...], valid_days: int
) -> None:
    """Create COUNTRY's root CAs (one per suite family) and their empty CRLs.

    Refuses to overwrite an existing root.
    """
    roots = init_country(
        cli.settings.home,
        country,
        passphrase_from_settings(cli.settings),
        suites=suites or ALL_SUITES,
        valid_days=valid_days,
        scrypt_log2_n=_SCRYPT_LOG2_N,
    )
    for root in roots:
        until = root.not_valid_after_utc.isoformat()
        click.echo(f"created root {root.subject.rfc4514_string()} valid until {until}")


def _record_types(value: str | None) -> frozenset[str]:
    if value is None:
        return RECORD_TYPES
    return frozenset(part.strip() for part in value.split(",") if part.strip())


@pki.command("enroll")
@click.option("--agency", required=True, help="Agency id, e.g. MEX-FGR.")
@click.option("--suite", "suites", type=_SUITE, multiple=True, help="Default: all three.")
@click.option(
    "--may-publish",
    help=f"Comma-separated record types. Default: all ({','.join(sorted(RECORD_TYPES))}).",
)
@click.option(
    "--valid-days", type=click.IntRange(min=1), default=DEFAULT_AGENCY_VALID_DAYS, show_default=True
)
@pass_cli
def enroll_cmd(
    cli: CliContext, agency: str, suites: tuple[str, ...], may_publish: str | None, valid_days: int
) -> None:
    """Generate AGENCY's keys and certify them under its country's roots."""
    keys = enroll_agency(
        cli.settings.home,
        agency,
        passphrase_from_settings(cli.settings),
        suites=suites or ALL_SUITES,
        may_publish=_record_types(may_publish),
        valid_days=valid_days,
    )
    _echo_keys(keys, "enrolled")


@pki.command("rotate")
@click.option("--agency", required=True)
@click.option(
    "--suite", "suites", type=_SUITE, multiple=True, help="Default: every enrolled suite."
)
@click.option(
    "--valid-days", type=click.IntRange(min=1), help="Default: as the current generation."
)
@pass_cli
def rotate_cmd(
    cli: CliContext, agency: str, suites: tuple[str, ...], valid_days: int | None
) -> None:
    """Start a new key generation now; older ones stay valid until they expire."""
    keys = rotate_agency(
        cli.settings.home,
        agency,
        passphrase_from_settings(cli.settings),
        suites=suites or None,
        valid_days=valid_days,
    )
    _echo_keys(keys, "rotated")


@pki.command("revoke")
@click.option("--agency", required=True)
@click.option("--key-id", required=True, help="See `exchange pki list`.")
@click.option(
    "--reason",
    type=click.Choice(list(_REASONS)),
    default="keyCompromise",
    show_default=True,
    help="keyCompromise/unspecified refuse the key for every signing time; the others only "
    "for messages signed from now on.",
)
@pass_cli
def revoke_cmd(cli: CliContext, agency: str, key_id: str, reason: str) -> None:
    """Revoke one key generation by re-issuing its root's CRL."""
    revocation = revoke_key(
        cli.settings.home,
        agency,
        key_id,
        passphrase_from_settings(cli.settings),
        reason=_REASONS[reason],
    )
    click.echo(f"revoked {agency} key {key_id} at {revocation.revoked_at.isoformat()} ({reason})")


@pki.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--at",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]),
    help="Status at this time (UTC if no offset). Default: now.",
)
@pass_cli
def list_cmd(cli: CliContext, as_json: bool, at: dt.datetime | None) -> None:
    """List every verified agency key generation and its status (public material only)."""
    layout_dir = cli.settings.home / "pki" / "trust"
    if not layout_dir.is_dir():
        raise ConfigurationError(
            f"no trust material under {layout_dir}; run `exchange pki init-country` first "
            "or copy a trust directory there"
        )
    when = (
        dt.datetime.now(dt.UTC) if at is None else (at if at.tzinfo else at.replace(tzinfo=dt.UTC))
    )
    store = TrustStore.from_directory(layout_dir)
    rows = [
        {
            "agency": e.key.agency_id,
            "suite": e.key.suite.value,
            "key_id": e.key.key_id,
            "not_before": e.key.not_before.isoformat(),
            "not_after": e.key.not_after.isoformat(),
            "status": store.status(e, at=when),
            "may_publish": sorted(e.key.may_publish),
            "revoked_at": e.revocation.revoked_at.isoformat() if e.revocation else None,
        }
        for e in store.entries()
    ]
    for problem in store.problems:
        click.echo(f"warning: {problem}", err=True)
    if as_json:
        click.echo(
            json.dumps({"at": when.isoformat(), "keys": rows, "problems": store.problems}, indent=2)
        )
        return
    table = Table("agency", "suite", "key id", "not before", "not after", "status", "may publish")
    for entry in store.entries():
        key = entry.key
        table.add_row(
            key.agency_id,
            key.suite.value,
            key.key_id,
            key.not_before.strftime("%Y-%m-%d %H:%M"),
            key.not_after.strftime("%Y-%m-%d %H:%M"),
            store.status(entry, at=when),
            ",".join(sorted(key.may_publish)),
        )
    Console(width=160).print(table)
