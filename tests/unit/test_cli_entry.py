from __future__ import annotations

import click
import pytest

from exchange.cli import EXIT_INFRASTRUCTURE, EXIT_REFUSED, EXIT_USAGE, cli, main
from exchange.errors import BrokerError, ConfigurationError, PolicyError


@cli.command("_test-exit", hidden=True)
@click.argument("code", type=int)
@click.pass_context
def _exit_with(ctx: click.Context, code: int) -> None:
    ctx.exit(code)


@cli.command("_test-raise", hidden=True)
@click.argument("kind")
def _raise(kind: str) -> None:
    errors = {
        "broker": BrokerError("broker 127.0.0.1:1 unreachable; run `exchange broker up`"),
        "config": ConfigurationError("EXCHANGE_HOME is not a directory"),
        "policy": PolicyError("cannot address CAN-RCMP"),
    }
    raise errors[kind]


def test_exit_code_of_a_command_reaches_the_shell() -> None:
    assert main(["_test-exit", "1"]) == 1
    assert main(["_test-exit", "0"]) == 0


@pytest.mark.parametrize(
    ("kind", "code"),
    [("broker", EXIT_INFRASTRUCTURE), ("config", EXIT_USAGE), ("policy", EXIT_REFUSED)],
)
def test_errors_become_one_line_and_an_exit_code(
    kind: str, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["_test-raise", kind]) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert err.count("\n") == 1


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == EXIT_USAGE
    assert "no-such-command" in capsys.readouterr().err


def test_invalid_setting_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EXCHANGE_TOPIC_PREFIX", "Bad Prefix")
    assert main(["_test-exit", "0"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "EXCHANGE_TOPIC_PREFIX" in err
    assert err.count("\n") == 1
