"""``exchange schemas``: inspect and check the Avro record contracts."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from exchange.errors import SchemaError
from exchange.records import check_schemas

__all__ = ["schemas"]


@click.group()
def schemas() -> None:
    """Avro record contracts in schemas/avro."""


@schemas.command()
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Schema tree to check (default: the installed or checked-out schemas/avro).",
)
def check(root: Path | None) -> None:
    """Parse every schema and prove each version FULL_TRANSITIVE compatible.

    Every vN.avsc is checked against all earlier versions of its subject with Apache
    Avro's reader/writer compatibility checker, as reader and as writer. Exits 0 when
    everything holds; otherwise prints one line per problem on stderr and exits non-zero.
    """
    report = check_schemas(root)
    table = Table(title=f"Avro schemas in {report.root}", title_justify="left")
    table.add_column("subject")
    table.add_column("ver", justify="right")
    table.add_column("type")
    table.add_column("fingerprint (SHA-256 of canonical form)", no_wrap=True)
    table.add_column("result")
    for row in report.rows:
        table.add_row(
            row.subject,
            "" if row.version is None else f"v{row.version}",
            row.full_name or "",
            row.fingerprint.hex() if row.fingerprint else "",
            row.result,
        )
    # A wide fixed width keeps the 64-hex fingerprints whole when output is piped.
    Console(width=200, soft_wrap=True).print(table)
    for problem in report.problems:
        click.echo(f"problem: {problem}", err=True)
    if not report.ok:
        raise SchemaError(f"{len(report.problems)} schema problem(s); see the lines above")
    click.echo(f"ok: {sum(r.version is not None for r in report.rows)} schema versions hold")
