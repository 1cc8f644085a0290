"""``exchange sample``: print realistic sample records as JSON lines."""

from __future__ import annotations

import click

from exchange.records import RECORD_TYPE_NAMES, record_type
from exchange.records.sample import MAX_SAMPLE_COUNT, generate

__all__ = ["sample"]


@click.command()
@click.option(
    "--type",
    "type_name",
    type=click.Choice(RECORD_TYPE_NAMES),
    required=True,
    help="Record family to generate.",
)
@click.option(
    "--count",
    type=click.IntRange(1, MAX_SAMPLE_COUNT),
    default=5,
    show_default=True,
    help="How many records.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--originator",
    metavar="AGENCY_ID",
    default=None,
    help="Originate every record from this agency, e.g. MEX-FGR (default: varies).",
)
def sample(type_name: str, count: int, seed: int, originator: str | None) -> None:
    """Print COUNT seeded sample records of one family as JSON lines.

    Records are realistic and consistent: with the same --seed and --count, trace requests
    name the seizures they came from, trace responses answer those requests, and so on.
    The same arguments always print the same lines.
    """
    rtype = record_type(type_name)
    for record in generate(type_name, count=count, seed=seed, originator=originator):
        click.echo(rtype.to_json(record))
