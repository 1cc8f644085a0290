"""What ``--as AGENCY`` commands share: the cluster, the trust store, the agency's keys.

Unstable helpers of the ``publish``, ``consume`` and ``quarantine`` commands. Cheap checks
come first so an operator's mistake is reported before a passphrase is stretched or a broker
is contacted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import click

from exchange.audit.agency import AgencyAudit
from exchange.audit_bus import AuditTopicWriter
from exchange.cli.pki import passphrase_from_settings
from exchange.crypto.pki import FileKeyProvider, PkiLayout, TrustStore
from exchange.errors import ConfigurationError
from exchange.routing import RoutingTable
from exchange.settings import ExchangeSettings

__all__ = [
    "AGENCY_OPTION",
    "Agency",
    "agency_connection",
    "load_agency",
    "load_routing",
    "open_audit",
    "resolve_bootstrap",
]

# Same shape as exchange.routing's agency ids; checked here so a typo fails before any I/O.
_AGENCY_ID = re.compile(r"^[A-Z]{3}(?:-[A-Z0-9]{2,16}){1,3}$")


def _agency_id(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not _AGENCY_ID.match(value):
        raise click.BadParameter(f"got {value!r}, expected an agency id such as MEX-FGR")
    return value


#: ``--as AGENCY``: whose keys, trust and quarantine a command uses.
AGENCY_OPTION = click.option(
    "--as",
    "agency",
    required=True,
    metavar="AGENCY",
    callback=_agency_id,
    help="Act as this enrolled agency (e.g. MEX-FGR); its keys come from $EXCHANGE_HOME/pki.",
)


def resolve_bootstrap(settings: ExchangeSettings) -> str:
    """``EXCHANGE_BOOTSTRAP``, else the local broker under ``$EXCHANGE_HOME`` if it is up.

    Never starts a broker: publishing or consuming against a cluster that appeared by
    accident would put envelopes where nobody looks.

    Raises:
        ConfigurationError: neither is available.
    """
    if settings.bootstrap:
        return settings.bootstrap
    # Tooling import, only on this path: library code never depends on the broker runtime.
    from exchange.broker import cluster_status  # noqa: PLC0415

    status = cluster_status(settings.home)
    if status.up and status.bootstrap:
        return status.bootstrap
    raise ConfigurationError("no Kafka cluster: set EXCHANGE_BOOTSTRAP or run `exchange broker up`")


@dataclass(frozen=True)
class Agency:
    """One agency's view of the exchange: its trust store and its private keys."""

    agency_id: str
    trust: TrustStore
    keys: FileKeyProvider


def load_agency(settings: ExchangeSettings, agency_id: str) -> Agency:
    """Trust store and key provider of ``agency_id`` from ``$EXCHANGE_HOME/pki``.

    Raises:
        ConfigurationError: no trust material, the agency is not enrolled, or no passphrase.
    """
    layout = PkiLayout(settings.home)
    if not layout.trust_dir.is_dir():
        raise ConfigurationError(
            f"no trust material under {layout.trust_dir}; run `exchange pki init-country` "
            "and `exchange pki enroll` first, or set EXCHANGE_HOME"
        )
    trust = TrustStore.load(settings.home)
    if agency_id not in trust.agencies():
        raise ConfigurationError(
            f"{agency_id} is not an enrolled agency in {layout.trust_dir}; see `exchange pki list`"
        )
    # One trust store for both roles, so the keys and the checks agree on what is valid.
    keys = FileKeyProvider(layout, agency_id, passphrase_from_settings(settings), trust=trust)
    return Agency(agency_id, trust, keys)


def load_routing(path: Path) -> RoutingTable:
    """The routing table at ``path``.

    Recipients are always the table's targets that a record's handling releases it to
    (``--to`` only narrows them), so without a table nobody could be addressed: this fails
    closed instead of guessing recipients.

    Raises:
        ConfigurationError: the table is missing or invalid.
    """
    if not path.is_file():
        raise ConfigurationError(
            f"no routing table at {path}: create it (see docs/operations.md, [[rules]] with "
            "senders, record_types, recipients) or set EXCHANGE_ROUTING_FILE"
        )
    return RoutingTable.load(path)


def open_audit(
    settings: ExchangeSettings,
    agency: Agency,
    bootstrap: str,
    *,
    config_overrides: Mapping[str, str] | None = None,
) -> AgencyAudit:
    """``agency``'s audit log under ``$EXCHANGE_HOME/audit/logs``, published to its topic.

    Audit is always on for the CLI: entries are never skipped (docs/audit.md).

    Raises:
        AuditStorageError: another process writes the log, or the disk failed.
        BrokerError: the audit topic cannot be created.
    """
    writer = AuditTopicWriter(
        bootstrap=bootstrap, agency_id=agency.agency_id, topic_prefix=settings.topic_prefix,
        config_overrides=config_overrides,
    )  # fmt: skip
    directory = settings.home / "audit" / "logs" / agency.agency_id
    return AgencyAudit.open(directory, agency.keys, publisher=writer)


def agency_connection(settings: ExchangeSettings, agency_id: str) -> tuple[str, dict[str, str]]:
    """Bootstrap and librdkafka security settings ``agency_id`` connects with.

    ``EXCHANGE_BOOTSTRAP`` wins, as is. Otherwise, with the binational profile up
    (``exchange broker up --profile binational``), the agency's home cluster with its mTLS
    credentials from ``$EXCHANGE_HOME/deploy``; otherwise the local broker, unauthenticated.

    Raises:
        ConfigurationError: no cluster, or the agency has no transport credentials.
    """
    if not settings.bootstrap:
        # Tooling imports, only on this path (see resolve_bootstrap).
        from exchange.broker.binational import binational_status  # noqa: PLC0415
        from exchange.deploy import client_settings  # noqa: PLC0415

        if binational_status(settings.home).up:
            conn = client_settings(settings.home, agency_id)
            return conn.bootstrap, dict(conn.config)
    return resolve_bootstrap(settings), {}
