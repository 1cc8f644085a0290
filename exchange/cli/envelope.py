"""``exchange envelope``: seal, verify and open envelopes offline (auditors, incident work).

Keys and trust come from ``$EXCHANGE_HOME/pki`` (docs/pki.md); the key-store passphrase from
``EXCHANGE_PKI_PASSPHRASE_FILE`` or ``EXCHANGE_PKI_PASSPHRASE``, never a flag. ``verify``
needs no private key. Results go to stdout, notes to stderr. Exit codes follow
:mod:`exchange.cli`: 0 ok, 2 bad input or settings, 3 infrastructure, 4 refused (integrity or
policy). For an operator the integrity reason is not secret, so refusals name it.

Example::

    exchange envelope seal --as MEX-FGR --type seizure --file rec.json --out env.bin
    exchange envelope verify env.bin
    exchange envelope open env.bin --as USA-ATF
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from exchange.cli._context import CliContext, pass_cli
from exchange.crypto import Opener, SuiteId, seal
from exchange.crypto.envelope import MAX_ENVELOPE
from exchange.errors import (
    ConfigurationError,
    DataError,
    ExchangeError,
    InfrastructureError,
    IntegrityError,
    IntegrityReason,
    PolicyError,
    RecordValidationError,
)
from exchange.policy import allowed_recipients, summary_from_handling
from exchange.records import MAX_RECORD_BYTES, RECORD_TYPE_NAMES, record_type
from exchange.records import record_type_for_fingerprint as _rt_for_fingerprint
from exchange.routing import exchange_topic, reach_for

__all__ = ["envelope"]

P = ParamSpec("P")
T = TypeVar("T")


class _Refused(click.ClickException):
    exit_code = 4


class _BadInput(click.ClickException):
    exit_code = 2


class _Infrastructure(click.ClickException):
    exit_code = 3


def _one_line(fn: Callable[P, T]) -> Callable[P, T]:
    """Turn our errors into one clear line and the documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except IntegrityError as exc:
            raise _Refused(f"envelope rejected: {exc.reason.value}") from None
        except RecordValidationError as exc:
            raise _BadInput(exc.diagnostics()) from None
        except (PolicyError, DataError) as exc:
            raise _Refused(exc.diagnostics()) from None
        except ConfigurationError as exc:
            raise _BadInput(exc.diagnostics()) from None
        except InfrastructureError as exc:
            raise _Infrastructure(exc.diagnostics()) from None
        except ExchangeError as exc:
            raise click.ClickException(exc.diagnostics()) from None

    return wrapper


def _pki(cli: CliContext, agency: str | None) -> tuple[Any, Any]:
    # Imported lazily: `exchange --help` stays fast and verify needs no key store.
    from exchange.crypto.pki import FileKeyProvider, PkiLayout, TrustStore  # noqa: PLC0415

    home = cli.settings.home
    if not PkiLayout(home).trust_dir.is_dir():
        raise ConfigurationError(
            f"no PKI under {home}/pki; run `exchange pki init-country` and `exchange pki enroll`"
        )
    trust = TrustStore.load(home)
    if agency is None:
        return trust, None
    from exchange.cli.pki import passphrase_from_settings  # noqa: PLC0415

    provider = FileKeyProvider(
        PkiLayout(home), agency, passphrase_from_settings(cli.settings), trust=trust
    )
    return trust, provider


def _read_bounded(path: Path, limit: int, what: str) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise ConfigurationError(f"{what} {path} is larger than {limit} bytes")
    return data


def _parse_ttl(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return timedelta(seconds=int(text[:-1]) * units[text[-1]])
    except (KeyError, ValueError, IndexError):
        raise click.BadParameter(f"got {text!r}, expected a number and s|m|h|d, e.g. 7d") from None


def _at(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"got {text!r}, expected an ISO 8601 time") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@click.group()
def envelope() -> None:
    """Seal, verify and open envelope v1 files (docs/envelope.md)."""


_SUITE = click.Choice([s.value for s in SuiteId])


@envelope.command("seal")
@click.option("--as", "agency", required=True, metavar="AGENCY_ID", help="Sending agency.")
@click.option("--type", "type_name", type=click.Choice(RECORD_TYPE_NAMES), required=True)
@click.option(
    "--file",
    "record_file",
    type=click.Path(path_type=Path),
    required=True,
    help="The record as JSON (as `exchange sample` prints it).",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Envelope file.")
@click.option(
    "--to",
    "to",
    multiple=True,
    metavar="AGENCY_ID",
    help="Narrow the recipients (repeatable); never widens the handling.",
)
@click.option("--suite", type=_SUITE, default=SuiteId.PQ_HYBRID.value, show_default=True)
@click.option("--topic", default=None, help="Topic bound into the header (default: routing).")
@click.option("--ttl", default="7d", show_default=True, help="Validity, e.g. 30m, 12h, 7d.")
@pass_cli
@_one_line
def seal_command(
    cli: CliContext,
    *,
    agency: str,
    type_name: str,
    record_file: Path,
    out: Path,
    to: tuple[str, ...],
    suite: str,
    topic: str | None,
    ttl: str,
) -> None:
    """Sign and encrypt a record to the agencies its handling releases it to."""
    rt = record_type(type_name)
    record = rt.from_json(_read_bounded(record_file, MAX_RECORD_BYTES * 4, "record file"))
    handling = summary_from_handling(record.handling)
    trust, provider = _pki(cli, agency)
    suite_id = SuiteId(suite)
    now = datetime.now(UTC)
    allowed = allowed_recipients(handling, trust.agencies(), sender=agency)
    if to:
        refused = sorted(set(to) - allowed)
        if refused:
            raise PolicyError(
                f"the handling of this record ({handling.tlp_label}, REL TO "
                f"{','.join(handling.releasable_to)}) does not allow {', '.join(refused)}"
            )
        recipients = sorted(set(to))
    else:
        recipients = sorted(allowed)
    if not recipients:
        raise PolicyError("the record's handling releases it to no enrolled agency but the sender")
    blob = seal(
        rt.encode(record),
        sender=provider,
        trust=trust,
        recipients=recipients,
        suite=suite_id,
        record_type=rt.name,
        schema_fingerprint=rt.fingerprint,
        handling=handling,
        topic=topic or exchange_topic(agency, reach_for(agency, recipients), rt.name),
        ttl=_parse_ttl(ttl),
        now=now,
    )
    try:
        out.write_bytes(blob)
    except OSError as exc:
        raise ConfigurationError(f"cannot write {out}: {exc.strerror}") from None
    click.echo(
        f"sealed {rt.name} {suite_id.value} {agency} -> {','.join(recipients)} "
        f"({len(blob)} bytes) to {out}"
    )


@envelope.command("verify")
@click.argument("envelope_file", type=click.Path(path_type=Path))
@click.option("--at", "at", default=None, help="Verify as of this ISO time (default: now).")
@pass_cli
@_one_line
def verify_command(cli: CliContext, envelope_file: Path, at: str | None) -> None:
    """Check signature, chain, revocation and bindings (no private key); print the header."""
    blob = _read_bounded(envelope_file, MAX_ENVELOPE, "envelope")
    trust, _ = _pki(cli, None)
    verified = Opener(trust).verify(blob, now=_at(at))
    click.echo(json.dumps(verified.to_dict(), indent=2))


@envelope.command("open")
@click.argument("envelope_file", type=click.Path(path_type=Path))
@click.option("--as", "agency", required=True, metavar="AGENCY_ID", help="Receiving agency.")
@click.option("--at", "at", default=None, help="Open as of this ISO time (default: now).")
@pass_cli
@_one_line
def open_command(cli: CliContext, envelope_file: Path, agency: str, at: str | None) -> None:
    """Verify, decrypt and print the record as JSON (only for an addressed agency)."""
    blob = _read_bounded(envelope_file, MAX_ENVELOPE, "envelope")
    trust, provider = _pki(cli, agency)
    opened = Opener(trust, recipient=provider).open(blob, now=_at(at))
    h = opened.header
    try:
        rt = _rt_for_fingerprint(h.schema_fingerprint)
        if rt.name != h.record_type:
            raise IntegrityError(IntegrityReason.SCHEMA_MISMATCH)
        record = rt.decode(opened.plaintext, writer_fingerprint=h.schema_fingerprint)
    except RecordValidationError:
        # Authentic but undecodable: the sender's fault, refused like any integrity failure.
        raise IntegrityError(IntegrityReason.SCHEMA_MISMATCH) from None
    click.echo(rt.to_json(record))
