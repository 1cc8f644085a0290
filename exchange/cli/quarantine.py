"""``exchange quarantine``: what an agency's consumers refused, and why.

Reading the quarantine needs no key and no passphrase: entries hold the refused envelope
(ciphertext) and its coordinates, never plaintext, and nothing here tries to decrypt them.
Reads use ``assign`` without a group, so inspecting never moves any consumer's position.

Example::

    exchange quarantine list --as USA-ATF
    exchange quarantine show --as USA-ATF 6f1c0f0e-...   # summary + first bytes, hex/base64
"""

from __future__ import annotations

import base64
import json

import click
from rich.console import Console
from rich.table import Table

from exchange.cli._agency import AGENCY_OPTION, resolve_bootstrap
from exchange.cli._context import CliContext, pass_cli
from exchange.quarantine import QuarantineEntry, read_quarantine

__all__ = ["quarantine"]

#: Bytes of the original envelope shown by ``show`` unless ``--bytes`` says otherwise.
DEFAULT_PREVIEW_BYTES = 64


def _entries(cli: CliContext, agency: str) -> list[QuarantineEntry]:
    bootstrap = resolve_bootstrap(cli.settings)
    return list(read_quarantine(bootstrap, agency, topic_prefix=cli.settings.topic_prefix))


@click.group()
def quarantine() -> None:
    """Inspect messages an agency's consumers refused (no decryption involved)."""


@quarantine.command("list")
@AGENCY_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON document: a list of entries.")
@pass_cli
def list_cmd(cli: CliContext, agency: str, as_json: bool) -> None:
    """List AGENCY's quarantine: time, reason, source, verified sender, size."""
    entries = _entries(cli, agency)
    if as_json:
        click.echo(json.dumps([e.summary() for e in entries], indent=2))
        return
    if not entries:
        click.echo(f"quarantine of {agency} is empty")
        return
    table = Table("id", "time (UTC)", "reason", "source", "verified sender", "bytes")
    for e in entries:
        table.add_row(
            e.quarantine_id,
            e.quarantined_at.strftime("%Y-%m-%d %H:%M:%S"),
            e.reason,
            f"{e.source_topic}[{e.source_partition}]@{e.source_offset}",
            e.verified_sender or "-",  # "-": the signature never verified; sender unknown
            str(e.value_size),
        )
    Console(width=200).print(table)


@quarantine.command("show")
@AGENCY_OPTION
@click.argument("quarantine_id", metavar="ID")
@click.option(
    "--bytes", "preview", type=click.IntRange(0, 4096), default=DEFAULT_PREVIEW_BYTES,
    show_default=True, help="How many leading bytes of the original envelope to show.",
)  # fmt: skip
@pass_cli
def show_cmd(cli: CliContext, agency: str, quarantine_id: str, preview: int) -> None:
    """Show one entry as JSON with a hex and base64 preview of its original bytes."""
    for entry in _entries(cli, agency):
        if entry.quarantine_id == quarantine_id:
            head = entry.value[:preview]
            document = {
                **entry.summary(),
                "key": None if entry.key is None else base64.b64encode(entry.key).decode(),
                "preview": {
                    "bytes": len(head),
                    "hex": head.hex(),
                    "base64": base64.b64encode(head).decode(),
                },
            }
            click.echo(json.dumps(document, indent=2))
            return
    raise click.BadParameter(
        f"no entry {quarantine_id} in the quarantine of {agency}; "
        f"see `exchange quarantine list --as {agency}`",
        param_hint="ID",
    )
