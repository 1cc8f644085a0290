"""``exchange deploy``: the binational deployment's transport security (mTLS, SCRAM, ACLs).

``init`` writes every country's transport CA, broker and client credentials, configurations
and ACL plan under ``$EXCHANGE_HOME/deploy``; ``check`` connects as an agency and shows what
its ACLs let it see. Secrets are files of mode 0600; no command takes one as an argument.
"""

from __future__ import annotations

from collections.abc import Sequence

import click
from rich.console import Console

from exchange.cli._context import CliContext, pass_cli
from exchange.deploy import DeployLayout, client_settings, init_deployment, probe
from exchange.deploy.plan import DEFAULT_DEPLOY_BASE_PORT, DeploymentPlan
from exchange.errors import ConfigurationError
from exchange.records import RECORD_TYPE_NAMES
from exchange.routing import RoutingRule, RoutingTable
from exchange.settings import ExchangeSettings

__all__ = ["deploy", "prepare_deployment"]


@click.group()
def deploy() -> None:
    """Transport security of the binational deployment (TLS, SCRAM, ACLs, MirrorMaker 2)."""


def prepare_deployment(
    settings: ExchangeSettings,
    agencies: Sequence[str],
    *,
    base_port: int | None,
    demo: bool,
    console: Console,
) -> DeploymentPlan:
    """Run :func:`init_deployment` with the agencies and routing table the settings name.

    Agencies: ``agencies`` if given, else those enrolled under ``$EXCHANGE_HOME/pki``, else
    (with ``demo``) the six demo agencies. Routing: ``EXCHANGE_ROUTING_FILE`` or
    ``$EXCHANGE_HOME/routing.toml``; without one, ``demo`` routes every agency to every other
    (what ``exchange demo`` writes); otherwise this fails closed.

    Raises:
        ConfigurationError: no agency or no routing table (and not ``demo``).
    """
    # Imported here: the PKI is only consulted when no agency is named.
    from exchange.crypto.pki import DEMO_AGENCIES, PkiLayout, TrustStore  # noqa: PLC0415

    chosen = list(agencies)
    if not chosen and PkiLayout(settings.home).trust_dir.is_dir():
        chosen = sorted(TrustStore.load(settings.home).agencies())
    if not chosen and demo:
        chosen = list(DEMO_AGENCIES)
    if not chosen:
        raise ConfigurationError(
            "no agencies: name them with --agency, enrol them (`exchange pki enroll`), or "
            "pass --demo"
        )
    path = settings.routing_path
    if path.is_file():
        routing = RoutingTable.load(path)
    elif demo:
        console.print(
            f"no routing table at {path}: using the demo's (every agency to every agency)",
            soft_wrap=True,
        )
        routing = RoutingTable(rules=[RoutingRule(senders=["*"], recipients=chosen)])
    else:
        raise ConfigurationError(
            f"no routing table at {path}; read ACLs derive from it (see docs/deployment.md), "
            "or pass --demo"
        )
    return init_deployment(
        settings.home,
        agencies=chosen,
        routing=routing,
        record_types=RECORD_TYPE_NAMES,
        prefix=settings.topic_prefix,
        base_port=base_port,
        note=lambda phrase: console.print(phrase, soft_wrap=True),
    )


@deploy.command()
@click.option(
    "--agency",
    "agencies",
    multiple=True,
    metavar="AGENCY",
    help="An agency to issue credentials for (repeatable) [default: those enrolled in the PKI].",
)
@click.option(
    "--port",
    "base_port",
    type=click.IntRange(1024, 65529),
    default=None,
    help="First of six loopback ports "
    f"[default: the existing plan's, else {DEFAULT_DEPLOY_BASE_PORT}].",
)
@click.option("--demo", is_flag=True, help="Without agencies or a routing table, use the demo's.")
@pass_cli
def init(cli: CliContext, agencies: tuple[str, ...], base_port: int | None, demo: bool) -> None:
    """Create (or complete) the transport CAs, credentials, configs and ACL plan.

    Existing CAs, certificates and passwords are kept; rerun it to add an agency.
    """
    console = Console(stderr=True, highlight=False)
    plan = prepare_deployment(
        cli.settings, agencies, base_port=base_port, demo=demo, console=console
    )
    for country, ports in plan.ports.items():
        agencies_here, acls = len(plan.agencies_of(country)), len(plan.acls[country])
        console.print(
            f"{country}: {agencies_here} agencies, {acls} ACLs, "
            f"mTLS {ports.ssl_bootstrap}, SCRAM {ports.sasl_bootstrap}",
            soft_wrap=True,
        )
    click.echo(DeployLayout(cli.settings.home).root)


@deploy.command()
@click.option("--as", "agency", required=True, metavar="AGENCY", help="The agency to connect as.")
@click.option("--scram", is_flag=True, help="Authenticate with SCRAM-SHA-512 instead of mTLS.")
@pass_cli
def check(cli: CliContext, agency: str, scram: bool) -> None:
    """Connect as AGENCY to its home cluster and list the topics its ACLs let it see."""
    conn = client_settings(cli.settings.home, agency, mechanism="scram" if scram else "mtls")
    topics = probe(conn.bootstrap, conn.config)
    Console(stderr=True, highlight=False).print(
        f"{agency} authenticated at {conn.bootstrap}; {len(topics)} topic(s) visible",
        soft_wrap=True,
    )
    for topic in topics:
        click.echo(topic)
