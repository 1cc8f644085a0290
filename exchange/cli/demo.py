"""``exchange demo``: the main job, end to end on a real Kafka broker.

Brings up (or reuses) the local single-node broker unless ``EXCHANGE_BOOTSTRAP`` names a
cluster, then runs :func:`exchange.demo.run_demo`: both countries' PKI, agencies publishing
signed and encrypted records of every family in both directions, every agency consuming its
feed into its own sink, and a per-agency table of what happened. The audit trail is on:
logs under ``$EXCHANGE_HOME/audit``, receipts, and cross-border witnesses; the last line
points to ``exchange audit verify``.
"""

from __future__ import annotations

import secrets
import time

import click
from rich.console import Console
from rich.table import Table

from exchange.cli._context import CliContext, pass_cli
from exchange.cli.pki import passphrase_from_settings
from exchange.crypto.pki import Passphrase
from exchange.demo import DemoReport, run_demo
from exchange.errors import ExchangeError

__all__ = ["demo"]


class DemoIncompleteError(ExchangeError):
    """Some addressed record was not delivered, or something was quarantined."""


def _bootstrap(cli: CliContext, err: Console) -> str:
    if cli.settings.bootstrap:
        return cli.settings.bootstrap
    from exchange.broker import ensure_cluster  # noqa: PLC0415 - tooling, only when needed

    with err.status("starting the local Kafka broker") as status:
        info = ensure_cluster(cli.settings.home, nodes=1, progress=status.update)
    how = "reused" if info.reused else f"started in {info.elapsed_s:.1f} s"
    err.print(f"Kafka {info.bootstrap} ({how}), state under {cli.settings.home}")
    return info.bootstrap


def _passphrase(cli: CliContext, err: Console) -> Passphrase:
    """The operator's passphrase if configured; else the demo's own, kept in a 0600 file."""
    settings = cli.settings
    if settings.pki_passphrase is not None or settings.pki_passphrase_file is not None:
        return passphrase_from_settings(settings)
    path = settings.home / "demo" / "passphrase"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24) + "\n", encoding="utf-8")
        err.print(f"demo key-store passphrase generated in {path} (mode 0600)")
    return passphrase_from_settings(settings.model_copy(update={"pki_passphrase_file": path}))


@click.command()
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Sample data seed [default: random]; the demo takes the first seed from it whose "
    "records cross the border in every direction.",
)
@click.option(
    "--cases",
    type=click.IntRange(1, 1000),
    default=4,
    show_default=True,
    help="Cases to generate; each yields records of every family.",
)
@pass_cli
def demo(cli: CliContext, seed: int | None, cases: int) -> None:
    """Two countries' agencies exchanging signed, encrypted records over real Kafka."""
    err = Console(stderr=True)
    bootstrap = _bootstrap(cli, err)
    passphrase = _passphrase(cli, err)
    seed = secrets.randbelow(1 << 31) if seed is None else seed
    began = time.monotonic()
    with err.status("starting") as status:
        report = run_demo(
            bootstrap=bootstrap,
            home=cli.settings.home,
            passphrase=passphrase,
            routing_path=cli.settings.routing_path,
            seed=seed,
            cases=cases,
            topic_prefix=cli.settings.topic_prefix,
            progress=status.update,
            audit_root=cli.settings.home / "audit",
        )
    _print(report, time.monotonic() - began, cli)
    if report.witness_refusals:
        raise DemoIncompleteError(
            f"a witness refused a checkpoint: {report.witness_refusals[0]}; "
            "run `exchange audit verify` for the details"
        )
    if not report.complete:
        raise DemoIncompleteError(
            "not every addressed record was delivered cleanly; "
            "see `exchange quarantine list --as AGENCY` and `exchange broker logs`"
        )


def _flows_table(report: DemoReport) -> Table:
    directions = sorted({(a, b) for _, a, b in report.flows})
    table = Table(title="deliveries by record family and direction")
    table.add_column("family")
    for a, b in directions:
        table.add_column(f"{a}->{b}", justify="right")
    for family in sorted({f for f, _, _ in report.flows}):
        table.add_row(family, *(str(report.flows.get((family, a, b), 0)) for a, b in directions))
    return table


def _print(report: DemoReport, elapsed: float, cli: CliContext) -> None:
    out = Console()
    table = Table(title=f"binational exchange, seed {report.seed}")
    columns = ("agency", "suite", "sent", "to it", "delivered", "unread", "quarantined")
    for column in columns:
        table.add_column(column, justify="left" if column in {"agency", "suite"} else "right")
    for t in sorted(report.tallies.values(), key=lambda t: (t.country, t.agency)):
        if not (t.sent or t.addressed):
            continue
        table.add_row(
            t.agency,
            t.suite.value if t.suite and t.sent else "",
            str(t.sent),
            str(t.addressed),
            str(t.delivered),
            str(t.not_addressed),
            str(t.quarantined),
        )
    out.print(table)
    out.print(_flows_table(report))
    delivered = sum(t.delivered for t in report.tallies.values())
    addressed = sum(t.addressed for t in report.tallies.values())
    out.print(
        f"{report.records} records sealed and published in {report.publish_seconds:.1f} s; "
        f"{delivered}/{addressed} deliveries verified, decrypted and stored in "
        f"{report.consume_seconds:.1f} s ({elapsed:.1f} s in all)."
    )
    out.print(
        "'to it': envelopes addressed to the agency; 'unread': envelopes on topics it reads "
        "that were addressed to others: checked, never decrypted."
    )
    home = cli.settings.home
    out.print(
        f"Look next: the agencies' SQLite sinks in {home / 'sinks'}; `exchange pki list` "
        "(keys of both countries); `exchange quarantine list --as USA-ATF`; "
        "`exchange broker status`; `make broker-down` stops the broker."
    )
    if report.audit_root is not None:
        out.print(
            f"Audit trail: logs in {report.audit_root / 'logs'}, {report.receipts_logged} "
            f"receipts verified and logged by the senders, {report.cosignatures} checkpoints "
            "cosigned by the other country's witnesses. "
            "Check it all with `exchange audit verify`."
        )
