"""Hermetic tests of ``exchange publish``, ``consume`` and ``quarantine``: bad input and
missing configuration are one ``error:`` line and a non-zero exit, before any broker is
contacted (none exists here)."""

from __future__ import annotations

import io
import sys
from collections import Counter
from pathlib import Path

import pytest

from exchange.cli import main
from exchange.cli.consume import summary_line
from exchange.consumers.secure import ConsumeSummary
from exchange.crypto.pki import Passphrase, bootstrap_demo_pki
from exchange.records import record_type
from exchange.records.sample import generate

_PASSPHRASE = "unit tests only, protects nothing"  # noqa: S105  # test keys only


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``EXCHANGE_HOME``: no broker, no PKI, no routing table."""
    for name in ("EXCHANGE_BOOTSTRAP", "EXCHANGE_ROUTING_FILE", "EXCHANGE_TOPIC_PREFIX",
                 "EXCHANGE_PKI_PASSPHRASE_FILE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EXCHANGE_HOME", str(tmp_path))
    monkeypatch.setenv("EXCHANGE_PKI_PASSPHRASE", _PASSPHRASE)
    return tmp_path


def _good_lines(count: int = 3) -> list[str]:
    rtype = record_type("seizure")
    return [rtype.to_json(r) for r in generate("seizure", count=count, seed=4)]


def _write(home: Path, lines: list[str] | bytes) -> Path:
    path = home / "recs.jsonl"
    if isinstance(lines, bytes):
        path.write_bytes(lines)
    else:
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _publish(path: Path | str, *extra: str) -> list[str]:
    return ["publish", "--as", "MEX-FGR", "--type", "seizure", "--file", str(path), *extra]


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("error: ")
    return line


@pytest.mark.parametrize(
    ("bad_line", "says"),
    [
        ('{"meta": ', "recs.jsonl:2: seizure: record: Invalid JSON"),
        ("[1, 2]", "recs.jsonl:2: seizure: record: Input should be an object"),
        ("{}", "recs.jsonl:2: seizure: meta: Field required (and"),
    ],
)
def test_bad_line_names_file_and_line(
    home: Path, capsys: pytest.CaptureFixture[str], bad_line: str, says: str
) -> None:
    good = _good_lines()
    path = _write(home, [good[0], bad_line, good[1]])
    assert main(_publish(path, "--to", "USA-ATF")) == 4
    line = _one_error_line(capsys)
    assert says in line
    assert line.endswith("; fix the line and rerun")


def test_missing_key_is_named(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _good_lines()
    without_handling = good[1].replace('"handling":', '"handlingx":', 1)
    path = _write(home, [good[0], "", without_handling])  # blank lines do not count as records
    assert main(_publish(path, "--to", "USA-ATF")) == 4
    assert "recs.jsonl:3: seizure: handling: Field required" in _one_error_line(capsys)


def test_line_that_is_not_utf8_is_refused(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(home, _good_lines(1)[0].encode() + b"\n\xff\xfe{}\n")
    assert main(_publish(path, "--to", "USA-ATF")) == 4
    assert "recs.jsonl:2: not UTF-8 text" in _one_error_line(capsys)


def test_file_without_records_is_refused(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(home, ["", "   "])
    assert main(_publish(path, "--to", "USA-ATF")) == 4
    assert "no records; nothing published" in _one_error_line(capsys)


@pytest.mark.usefixtures("home")
def test_stdin_lines_are_named_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"not json\n"), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(_publish("-", "--to", "USA-ATF")) == 4
    assert _one_error_line(capsys).startswith("error: <stdin>:1: seizure: record: Invalid JSON")


def test_unknown_type_lists_the_valid_ones(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(home, _good_lines())
    args = ["publish", "--as", "MEX-FGR", "--type", "firearm", "--file", str(path)]
    assert main(args) == 2
    line = _one_error_line(capsys)
    assert "'firearm' is not one of" in line
    for name in ("seizure", "trace-request", "trace-response", "ballistic", "intel"):
        assert name in line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--as", "FGR"], "expected an agency id such as MEX-FGR"),
        (["--to", "USA-ATF", "--to", "USA-ATF"], "an agency is named twice"),
        (["--suite", "rot13"], "'rot13' is not one of 'classic', 'pq-hybrid', 'cnsa'"),
    ],
)
def test_argument_errors_are_usage_errors(
    home: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    path = _write(home, _good_lines())
    assert main([*_publish(path), *args]) == 2
    assert says in _one_error_line(capsys)


def test_missing_file_is_a_usage_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_publish(home / "nope.jsonl", "--to", "USA-ATF")) == 2
    assert "does not exist" in _one_error_line(capsys)


@pytest.mark.parametrize("to", [[], ["--to", "USA-ATF"]])
def test_no_routing_table_fails_closed_even_with_to(
    home: Path, capsys: pytest.CaptureFixture[str], to: list[str]
) -> None:
    # --to only narrows the routing table's recipients, so it cannot stand in for one.
    assert main(_publish(_write(home, _good_lines()), *to)) == 2
    line = _one_error_line(capsys)
    assert f"no routing table at {home / 'routing.toml'}" in line
    assert "EXCHANGE_ROUTING_FILE" in line


def _route_everything(home: Path) -> None:
    (home / "routing.toml").write_text(
        '[[rules]]\nsenders = ["*"]\nrecipients = ["MEX-FGR", "USA-ATF"]\n'
    )


def test_invalid_routing_table_is_reported(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "routing.toml").write_text('[[rules]]\nsenders = ["MEX-*"]\n')
    assert main(_publish(_write(home, _good_lines()))) == 2
    assert "rules.0.recipients: Field required" in _one_error_line(capsys)


@pytest.mark.parametrize(
    "args",
    [
        ["publish", "--as", "MEX-FGR", "--type", "seizure", "--file", "RECS", "--to", "USA-ATF"],
        ["consume", "--as", "USA-ATF", "--until-idle", "1"],
        ["quarantine", "list", "--as", "USA-ATF"],
        ["quarantine", "show", "--as", "USA-ATF", "some-id"],
    ],
)
def test_no_cluster_is_one_line_and_never_starts_a_broker(
    home: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    _route_everything(home)
    path = _write(home, _good_lines())
    assert main([str(path) if a == "RECS" else a for a in args]) == 2
    assert _one_error_line(capsys) == (
        "error: no Kafka cluster: set EXCHANGE_BOOTSTRAP or run `exchange broker up`"
    )
    assert not (home / "broker").exists()


@pytest.mark.usefixtures("home")
def test_no_trust_material_is_reported_before_any_connection(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXCHANGE_BOOTSTRAP", "127.0.0.1:9")  # discard port: never contacted
    assert main(["consume", "--as", "USA-ATF", "--until-idle", "1"]) == 2
    assert "no trust material under" in _one_error_line(capsys)


def test_agency_not_enrolled_is_reported(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap_demo_pki(home, Passphrase(_PASSPHRASE.encode()), scrypt_log2_n=12)
    monkeypatch.setenv("EXCHANGE_BOOTSTRAP", "127.0.0.1:9")
    _route_everything(home)
    path = _write(home, _good_lines())
    args = ["publish", "--as", "USA-TPD", "--type", "seizure", "--file", str(path)]
    assert main([*args, "--to", "MEX-FGR"]) == 2
    assert "USA-TPD is not an enrolled agency" in _one_error_line(capsys)


def test_consume_summary_line_counts_quarantine_by_reason() -> None:
    summary = ConsumeSummary(
        delivered=7, duplicates=1, not_addressed=3, quarantined=Counter(replay=2, bad_signature=1)
    )
    assert summary_line("USA-ATF", summary) == (
        "USA-ATF: delivered 7, duplicates 1, not addressed 3, "
        "quarantined 3 (bad_signature 1, replay 2)"
    )
    assert summary_line("USA-ATF", ConsumeSummary()).endswith("quarantined 0")
