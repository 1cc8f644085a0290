"""``exchange broker up/status --profile binational``: unstable helpers of ``exchange broker``.

Kept apart so the single-cluster commands stay small and never import the deployment code.
"""

from __future__ import annotations

import json

import click
from rich.console import Console

from exchange.broker.binational import BinationalStatus, binational_status, ensure_binational
from exchange.cli.deploy import prepare_deployment
from exchange.deploy import DeployLayout
from exchange.settings import ExchangeSettings

__all__ = ["binational_status", "print_binational", "up_binational"]


def up_binational(
    settings: ExchangeSettings, *, nodes: int, base_port: int | None, timeout: float
) -> None:
    """Initialise the deployment if needed, start both clusters and mirrors, print bootstraps.

    Stdout gets one line per country, ``<CTY> <mTLS bootstrap> <SCRAM bootstrap>``.

    Raises:
        click.BadParameter: ``--nodes 3`` (the local profile runs one node per country).
        ConfigurationError, BrokerError: as ``exchange deploy init`` and ``broker up``.
    """
    if nodes != 1:
        raise click.BadParameter(
            "the binational profile runs one node per country locally (production: 3+, "
            "see docs/deployment.md)",
            param_hint="--nodes",
        )
    console = Console(stderr=True, highlight=False)
    layout = DeployLayout(settings.home)
    if not layout.plan_file.is_file() or base_port is not None:
        prepare_deployment(settings, (), base_port=base_port, demo=True, console=console)
    with console.status("starting the binational profile") as spinner:
        info = ensure_binational(settings.home, timeout=timeout, progress=spinner.update)
    applied = ", ".join(f"{c}: {u} SCRAM users, {a} ACLs" for c, (u, a) in info.applied.items())
    console.print(
        f"binational profile up in {info.elapsed_s:.1f} s ({applied}; "
        f"EXCHANGE_HOME={settings.home})",
        soft_wrap=True,
    )
    for country, ports in info.plan.ports.items():
        click.echo(f"{country} {ports.ssl_bootstrap} {ports.sasl_bootstrap}")


def print_binational(status: BinationalStatus, *, as_json: bool) -> None:
    """Print both clusters and both mirrors, as a table or as JSON."""
    if as_json:
        click.echo(json.dumps({"profile": "binational", **status.to_json()}, indent=2))
        return
    # Plain lines, not a table: the mirror's topic patterns and log paths are long.
    click.echo(f"binational profile: {status.to_json()['state']}")
    for country, cluster in status.clusters.items():
        for node in cluster.nodes:
            click.echo(
                f"  {country} broker {node.node_id}: {_alive(node.alive, node.pid)}; "
                f"mTLS 127.0.0.1:{node.port}, SCRAM 127.0.0.1:{node.port + 2}, "
                f"controller {node.controller_port}; log {node.log}"
            )
    for mirror in status.mirrors:
        click.echo(
            f"  mirror {mirror.source}->{mirror.target}: {_alive(mirror.alive, mirror.pid)}; "
            f"topics {', '.join(mirror.topics)}; log {mirror.log}"
        )


def _alive(alive: bool, pid: int | None) -> str:
    return f"alive (pid {pid})" if alive else f"NOT running (last pid {pid or '-'})"
