"""``exchange broker``: a local Apache Kafka cluster (KRaft, plain JVMs) for dev and tests.

Everything for humans goes to stderr; stdout carries only what scripts read: the bootstrap
address as the last line of ``up``, the status (table or ``--json``), and log lines.
"""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from exchange.broker import (
    DEFAULT_BASE_PORT,
    DEFAULT_START_TIMEOUT,
    DEFAULT_STOP_TIMEOUT,
    ClusterStatus,
    cluster_status,
    ensure_cluster,
    stop_cluster,
)
from exchange.broker.logs import follow, tail_lines
from exchange.cli._context import CliContext, pass_cli
from exchange.errors import BrokerError

__all__ = ["broker"]

#: ``status`` exit code when the cluster is down or degraded (see exchange.cli).
_EXIT_NOT_UP = 1


@click.group()
def broker() -> None:
    """Run a local Apache Kafka 4.4 cluster (KRaft, no Docker) under $EXCHANGE_HOME."""


@broker.command()
@click.option(
    "--nodes",
    type=click.Choice(["1", "3"]),
    default="1",
    show_default=True,
    help="1 node, or 3 for fault tests (replication 3, min.insync.replicas 2).",
)
@click.option(
    "--port",
    "base_port",
    type=click.IntRange(1024, 65530),
    default=None,
    help=f"Node 1's client port [default: {DEFAULT_BASE_PORT}]; node n uses PORT+2(n-1) "
    "and its controller the port after.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=DEFAULT_START_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the brokers to serve metadata.",
)
@click.option(
    "--profile",
    type=click.Choice(["local", "binational"]),
    default="local",
    show_default=True,
    help="local: one plaintext cluster; binational: a MEX and a USA cluster with TLS, SCRAM "
    "and ACLs, linked by MirrorMaker 2 (runs `exchange deploy init --demo` if needed).",
)
@pass_cli
def up(cli: CliContext, nodes: str, base_port: int | None, timeout: float, profile: str) -> None:
    """Start the local cluster, or reuse it, and print its bootstrap address last.

    Waits until every broker serves metadata. Restarts crashed nodes against their data.
    """
    console = Console(stderr=True, highlight=False)
    if profile == "binational":
        # Tooling import: only this profile needs the deployment machinery.
        from exchange.cli._binational import up_binational  # noqa: PLC0415

        up_binational(cli.settings, nodes=int(nodes), base_port=base_port, timeout=timeout)
        return
    with console.status("starting the local Kafka cluster") as spinner:
        info = ensure_cluster(
            cli.settings.home,
            int(nodes),
            base_port=base_port,
            timeout=timeout,
            progress=spinner.update,
        )
    if info.reused:
        console.print(
            f"reusing the running {len(info.nodes)}-node cluster {info.cluster_id}", soft_wrap=True
        )
    else:
        started = ", ".join(str(n) for n in info.started)
        console.print(
            f"started node(s) {started} of cluster {info.cluster_id} in {info.elapsed_s:.1f} s "
            f"(EXCHANGE_HOME={info.home})",
            soft_wrap=True,
        )
    click.echo(info.bootstrap)


@broker.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead.")
@pass_cli
def status(cli: CliContext, as_json: bool) -> None:
    """Show each node's pid, ports and roles; exit 0 when up, 1 when down or degraded.

    With the binational profile up, shows both clusters and both mirrors instead.
    """
    from exchange.cli._binational import binational_status, print_binational  # noqa: PLC0415

    profile = binational_status(cli.settings.home)
    if profile.exists:
        print_binational(profile, as_json=as_json)
        if not profile.up:
            raise SystemExit(_EXIT_NOT_UP)
        return
    observed = cluster_status(cli.settings.home)
    if as_json:
        click.echo(json.dumps(observed.to_json(), indent=2))
    elif not observed.nodes:
        click.echo(f"local Kafka cluster: down (no cluster under {cli.settings.home})")
    else:
        Console(highlight=False).print(_table(observed))
    if not observed.up:
        # SystemExit, not click's Exit: with standalone_mode=False click turns Exit into a
        # return value, which exchange.cli.main does not propagate yet.
        raise SystemExit(_EXIT_NOT_UP)


@broker.command()
@click.option(
    "--keep-data",
    is_flag=True,
    help="Keep topics, state and logs; the next `up` restarts the same cluster.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_STOP_TIMEOUT,
    show_default=True,
    help="Seconds between SIGTERM and SIGKILL.",
)
@pass_cli
def down(cli: CliContext, keep_data: bool, timeout: float) -> None:
    """Stop every node and mirror and (unless --keep-data) delete cluster data. Idempotent.

    Stops the local cluster and the binational profile's clusters and mirrors alike; the
    binational deployment's credentials (``$EXCHANGE_HOME/deploy``) are kept.
    """
    from exchange.broker.binational import stop_binational  # noqa: PLC0415

    console = Console(stderr=True, highlight=False)
    with console.status("stopping the local Kafka cluster"):
        stopped = stop_cluster(cli.settings.home, keep_data=keep_data, timeout=timeout)
        stopped += stop_binational(cli.settings.home, keep_data=keep_data, timeout=timeout)
    kept = "kept" if keep_data else "removed"
    console.print(f"stopped {stopped} process(es); cluster data {kept}", soft_wrap=True)


@broker.command()
@click.option("--node", "node_id", type=click.IntRange(min=1), help="Only this node.")
@click.option(
    "--lines", type=click.IntRange(min=0), default=50, show_default=True, help="Lines per node."
)
@click.option("-f", "--follow", "keep_following", is_flag=True, help="Keep printing new lines.")
@pass_cli
def logs(cli: CliContext, node_id: int | None, lines: int, keep_following: bool) -> None:
    """Print the last lines of the broker log(s), optionally following them."""
    observed = cluster_status(cli.settings.home)
    if not observed.nodes:
        raise BrokerError(f"no local cluster under {cli.settings.home}; run `exchange broker up`")
    nodes = [n for n in observed.nodes if node_id is None or n.node_id == node_id]
    if not nodes:
        ids = ", ".join(str(n.node_id) for n in observed.nodes)
        raise click.BadParameter(f"got node {node_id}, expected one of {ids}", param_hint="--node")
    prefix = len(nodes) > 1
    for node in nodes:
        if prefix:
            click.echo(f"==> node {node.node_id}: {node.log} <==")
        for line in tail_lines(node.log, lines):
            click.echo(line)
    if keep_following:
        try:
            for nid, line in follow({n.node_id: n.log for n in nodes}):
                click.echo(f"[node {nid}] {line}" if prefix else line)
        except KeyboardInterrupt:
            return  # Ctrl-C is how one stops following, not an error


def _table(observed: ClusterStatus) -> Table:
    title = f"local Kafka cluster: {observed.state}"
    if observed.bootstrap:
        title += f" ({observed.bootstrap})"
    table = Table(title=title, title_justify="left")
    for column in ("node", "alive", "pid", "roles", "port", "controller"):
        table.add_column(column, no_wrap=True)
    table.add_column("log", overflow="fold")
    for node in observed.nodes:
        table.add_row(
            str(node.node_id),
            "yes" if node.alive else "[red]no[/red]",
            str(node.pid or "-"),
            ",".join(node.roles),
            str(node.port),
            str(node.controller_port),
            str(node.log),
        )
    return table
