"""``exchange pki`` end to end through click's CliRunner, on a throwaway $EXCHANGE_HOME."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from exchange.cli._context import CliContext
from exchange.cli.pki import pki
from exchange.errors import ConfigurationError, ExchangeError
from exchange.settings import ExchangeSettings
from tests.unit.crypto.pki._pki_world import SECRET


@click.group()
@click.pass_context
def _exchange(ctx: click.Context) -> None:
    # Stands in for the real entry point: settings from EXCHANGE_* variables, read once.
    ctx.obj = CliContext(settings=ExchangeSettings())


_exchange.add_command(pki)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # A cheap scrypt keeps the suite fast; the production cost is covered by test_pki_keystore.
    monkeypatch.setattr("exchange.cli.pki._SCRYPT_LOG2_N", 10)
    return tmp_path / "home"


@pytest.fixture
def passphrase_file(tmp_path: Path) -> Path:
    path = tmp_path / "passphrase"
    path.write_bytes(SECRET + b"\n")
    path.chmod(0o600)
    return path


def _run(home: Path, passphrase_file: Path | None, *args: str, secret: str | None = None) -> Result:
    env = {"EXCHANGE_HOME": str(home), "EXCHANGE_PKI_PASSPHRASE": secret}
    env["EXCHANGE_PKI_PASSPHRASE_FILE"] = str(passphrase_file) if passphrase_file else None
    return CliRunner().invoke(_exchange, ["pki", *args], env=env)


def _one_line_error(result: Result) -> str:
    assert result.exit_code != 0
    assert isinstance(result.exception, ExchangeError), result.output
    text = result.exception.diagnostics()
    assert "\n" not in text
    return text


def _list(home: Path, passphrase_file: Path | None) -> list[dict[str, object]]:
    result = _run(home, passphrase_file, "list", "--json")
    assert result.exit_code == 0, result.output
    keys = json.loads(result.stdout)["keys"]
    assert isinstance(keys, list)
    return keys


def test_cli_lifecycle_init_enroll_rotate_revoke_list(home: Path, passphrase_file: Path) -> None:
    for country in ("MEX", "USA"):
        result = _run(home, passphrase_file, "init-country", "--country", country)
        assert result.exit_code == 0, result.output
        assert result.stdout.count("created root") == 3

    result = _run(home, passphrase_file, "enroll", "--agency", "MEX-FGR")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("enrolled MEX-FGR") == 3
    result = _run(
        home, passphrase_file, "enroll", "--agency", "USA-ATF", "--suite", "pq-hybrid",
        "--may-publish", "trace-request,trace-response", "--valid-days", "90",
    )  # fmt: skip
    assert result.exit_code == 0, result.output

    keys = _list(home, None)  # listing needs public material only: no passphrase
    assert {(k["agency"], k["suite"]) for k in keys} == {
        ("MEX-FGR", "classic"),
        ("MEX-FGR", "pq-hybrid"),
        ("MEX-FGR", "cnsa"),
        ("USA-ATF", "pq-hybrid"),
    }
    atf = next(k for k in keys if k["agency"] == "USA-ATF")
    assert atf["may_publish"] == ["trace-request", "trace-response"]
    assert all(k["status"] == "valid" for k in keys)

    old = next(k for k in keys if k["agency"] == "MEX-FGR" and k["suite"] == "classic")
    result = _run(home, passphrase_file, "rotate", "--agency", "MEX-FGR", "--suite", "classic")
    assert result.exit_code == 0, result.output
    assert "rotated MEX-FGR classic key" in result.stdout
    statuses = {k["key_id"]: k["status"] for k in _list(home, None)}
    assert statuses[old["key_id"]] == "superseded"
    assert list(statuses.values()).count("valid") == 4

    result = _run(
        home, passphrase_file, "revoke", "--agency", "MEX-FGR", "--key-id", str(old["key_id"])
    )
    assert result.exit_code == 0, result.output
    assert "keyCompromise" in result.stdout
    revoked = {k["key_id"]: k for k in _list(home, None)}[old["key_id"]]
    assert revoked["status"] == "revoked"
    assert revoked["revoked_at"] is not None

    table = _run(home, None, "list")
    assert table.exit_code == 0
    assert "MEX-FGR" in table.stdout
    assert "revoked" in table.stdout
    assert "superseded" not in table.stdout

    history = (home / "pki" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in history].count("init-country") == 6
    assert json.loads(history[-1])["event"] == "revoke"
    assert SECRET.decode() not in "".join(history)


def test_cli_init_country_twice_refuses_to_overwrite(home: Path, passphrase_file: Path) -> None:
    assert (
        _run(
            home, passphrase_file, "init-country", "--country", "MEX", "--suite", "classic"
        ).exit_code
        == 0
    )
    before = (home / "pki" / "trust" / "roots" / "MEX" / "classic.pem").read_bytes()
    text = _one_line_error(_run(home, passphrase_file, "init-country", "--country", "MEX"))
    assert "already exists" in text
    assert "refusing to overwrite" in text
    assert (home / "pki" / "trust" / "roots" / "MEX" / "classic.pem").read_bytes() == before


def test_cli_enroll_without_root_says_what_to_run(home: Path, passphrase_file: Path) -> None:
    assert _run(home, passphrase_file, "init-country", "--country", "USA").exit_code == 0
    text = _one_line_error(_run(home, passphrase_file, "enroll", "--agency", "MEX-FGR"))
    assert "no classic root CA for MEX" in text
    assert str(home / "pki") in text
    assert "run `exchange pki init-country --country MEX` first" in text


def test_cli_without_passphrase_explains_both_variables(home: Path) -> None:
    text = _one_line_error(_run(home, None, "init-country", "--country", "MEX"))
    assert "EXCHANGE_PKI_PASSPHRASE_FILE" in text
    assert not (home / "pki" / "private").exists()


def test_cli_wrong_passphrase_is_one_line_without_the_secret(
    home: Path, passphrase_file: Path, tmp_path: Path
) -> None:
    assert _run(home, passphrase_file, "init-country", "--country", "MEX").exit_code == 0
    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"this is not the passphrase\n")
    text = _one_line_error(_run(home, wrong, "enroll", "--agency", "MEX-FGR"))
    assert "does not unlock the key store" in text
    assert "this is not the passphrase" not in text
    assert SECRET.decode() not in text


def test_cli_short_passphrase_refused(home: Path, tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_bytes(b"hunter2\n")
    text = _one_line_error(_run(home, short, "init-country", "--country", "MEX"))
    assert "EXCHANGE_PKI_PASSPHRASE_FILE" in text
    assert "at least 12" in text
    assert "hunter2" not in text


def test_cli_has_no_passphrase_flag() -> None:
    # Secrets never travel in argv: no option of any pki command may carry one.
    for command in pki.commands.values():
        for param in command.params:
            assert "pass" not in (param.name or "").lower(), (command.name, param.name)


def test_cli_key_files_are_private(home: Path, passphrase_file: Path) -> None:
    assert (
        _run(home, passphrase_file, "init-country", "--country", "MEX", "--suite", "cnsa").exit_code
        == 0
    )
    result = _run(home, passphrase_file, "enroll", "--agency", "MEX-SSPC", "--suite", "cnsa")
    assert result.exit_code == 0, result.output
    files = [p for p in (home / "pki" / "private").rglob("*") if p.is_file()]
    assert len(files) == 4  # keystore.json, root key, signing key, KEM key
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert stat.S_IMODE((home / "pki").stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("enroll", "--agency", "mex-fgr"), "malformed"),
        (
            ("enroll", "--agency", "MEX-FGR", "--may-publish", "seizure,gossip"),
            "unknown record types",
        ),
        (("rotate", "--agency", "MEX-FGR"), "not enrolled"),
        (("revoke", "--agency", "MEX-FGR", "--key-id", "00" * 16), "no trusted certificate"),
    ],
)
def test_cli_bad_requests_fail_with_one_line(
    home: Path, passphrase_file: Path, args: tuple[str, ...], expected: str
) -> None:
    assert (
        _run(
            home, passphrase_file, "init-country", "--country", "MEX", "--suite", "classic"
        ).exit_code
        == 0
    )
    result = _run(home, passphrase_file, *args)
    assert isinstance(result.exception, ConfigurationError)
    assert expected in _one_line_error(result)


def test_cli_list_without_pki_says_what_to_do(home: Path) -> None:
    assert "run `exchange pki init-country`" in _one_line_error(_run(home, None, "list"))


def test_cli_passphrase_from_environment_variable(home: Path) -> None:
    secret = SECRET.decode()
    result = _run(home, None, "init-country", "--country", "USA", "--suite", "cnsa", secret=secret)
    assert result.exit_code == 0, result.output
    result = _run(home, None, "enroll", "--agency", "USA-CBP", "--suite", "cnsa", secret=secret)
    assert result.exit_code == 0, result.output
    assert secret not in result.output


def test_cli_list_at_shows_expired_and_not_yet_valid(home: Path, passphrase_file: Path) -> None:
    assert (
        _run(
            home, passphrase_file, "init-country", "--country", "MEX", "--suite", "classic"
        ).exit_code
        == 0
    )
    result = _run(home, passphrase_file, "enroll", "--agency", "MEX-FGR", "--suite", "classic",
                  "--valid-days", "10")  # fmt: skip
    assert result.exit_code == 0, result.output
    for at, status in (
        ("2000-01-01T00:00:00", "not-yet-valid"),
        ("2999-01-01T00:00:00", "expired"),
    ):
        listed = _run(home, None, "list", "--json", "--at", at)
        assert listed.exit_code == 0, listed.output
        assert [k["status"] for k in json.loads(listed.stdout)["keys"]] == [status]
