"""The ``exchange`` command line.

The CLI is the only layer that reads argv, prints for humans and maps errors to exit codes.
Each subcommand group lives in its own module and registers a :class:`click.Group` or
:class:`click.Command` here.

Exit codes: 0 success; 1 a check found problems (``broker status`` when down, audit findings);
2 bad usage or bad input; 3 infrastructure failed (retry may help); 4 integrity or policy
refusal.
"""

from __future__ import annotations

import logging
import sys

import click
from pydantic import ValidationError

from exchange.cli._context import CliContext, pass_cli
from exchange.errors import (
    ConfigurationError,
    DataError,
    ExchangeError,
    InfrastructureError,
)
from exchange.settings import ExchangeSettings

__all__ = ["CliContext", "cli", "main", "pass_cli"]

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INFRASTRUCTURE = 3
EXIT_REFUSED = 4


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level to stderr.")
@click.version_option(package_name="binational-exchange", prog_name="exchange")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Secure binational intelligence exchange on Apache Kafka.

    Settings come from EXCHANGE_* environment variables (EXCHANGE_HOME, EXCHANGE_BOOTSTRAP,
    EXCHANGE_LOG_LEVEL); secrets are read from files or the environment, never from flags.
    """
    try:
        settings = ExchangeSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigurationError(
            f"EXCHANGE_{field.upper()} is invalid: {first['msg']}; fix the variable and rerun"
        ) from None
    logging.basicConfig(
        level="DEBUG" if verbose else settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    ctx.obj = CliContext(settings=settings)


def _register() -> None:
    # Imported here so that `exchange --help` stays fast and each module stays independent.
    from exchange.cli import (  # noqa: PLC0415
        audit,
        bench,
        broker,
        consume,
        demo,
        deploy,
        envelope,
        pki,
        publish,
        quarantine,
        sample,
        schemas,
        soak,
    )

    cli.add_command(audit.audit)
    cli.add_command(bench.bench)
    cli.add_command(broker.broker)
    cli.add_command(demo.demo)
    cli.add_command(deploy.deploy)
    cli.add_command(envelope.envelope)
    cli.add_command(pki.pki)
    cli.add_command(schemas.schemas)
    cli.add_command(sample.sample)
    cli.add_command(publish.publish)
    cli.add_command(consume.consume)
    cli.add_command(quarantine.quarantine)
    cli.add_command(soak.soak)


_register()


def _exit_code(exc: ExchangeError) -> int:
    if isinstance(exc, InfrastructureError):
        return EXIT_INFRASTRUCTURE
    if isinstance(exc, ConfigurationError):
        return EXIT_USAGE
    if isinstance(exc, DataError):
        return EXIT_REFUSED
    return EXIT_FINDINGS


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit code. Errors become one line on stderr."""
    try:
        # Without standalone mode click returns (not raises) the code of ctx.exit(code).
        code = cli.main(args=argv, prog_name="exchange", standalone_mode=False)
    except ExchangeError as exc:
        click.echo(f"error: {exc.diagnostics()}", err=True)
        return _exit_code(exc)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        return 130
    return code if isinstance(code, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
