"""State shared by every subcommand: the settings read once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

import click

from exchange.settings import ExchangeSettings


@dataclass(frozen=True)
class CliContext:
    settings: ExchangeSettings


pass_cli = click.make_pass_decorator(CliContext)
