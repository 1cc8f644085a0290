"""How the command line reads records and envelopes from files and stdin, under hostile input:
random JSON, JSON nested 100,000 levels deep, huge strings and lines, wrong types, wrong
schema, random bytes. Always one ``error:`` line on stderr and a non-zero exit, never a
traceback, and never more memory than one record's bound. Runs ``exchange.cli.main`` (the
real entry point, with its error mapping) inside click's ``CliRunner`` isolation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from exchange.cli import main
from exchange.crypto.pki import Passphrase, bootstrap_demo_pki
from exchange.records import MAX_RECORD_BYTES
from fuzz.envelope_target import world
from tests.unit.hostile.hostile_support import hostile, peak_kib

_PASSPHRASE = "unit tests only, protects nothing"  # noqa: S105  # test keys only
_DECODER_REASONS = ("malformed", "oversized", "unknown_version", "unknown_suite")


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def one_error_line(self, *codes: int) -> str:
        assert self.code in codes, (self.code, self.err)
        assert "Traceback" not in self.err
        [line] = self.err.splitlines()
        assert line.startswith("error: ")
        return line


def _env(home: Path) -> dict[str, str | None]:
    return {
        "EXCHANGE_HOME": str(home),
        "EXCHANGE_PKI_PASSPHRASE": _PASSPHRASE,
        "EXCHANGE_PKI_PASSPHRASE_FILE": None,
        "EXCHANGE_BOOTSTRAP": None,
        "EXCHANGE_ROUTING_FILE": None,
        "EXCHANGE_TOPIC_PREFIX": None,
    }


def run(home: Path, args: list[str], stdin: bytes | None = None) -> Run:
    with CliRunner().isolation(input=stdin, env=_env(home)) as (out, err, _):
        code = main(args)
        return Run(code, out.getvalue().decode(), err.getvalue().decode())


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An EXCHANGE_HOME with a PKI (MEX-FGR, USA-ATF; classic) and no routing or broker."""
    path = tmp_path_factory.mktemp("home")
    bootstrap_demo_pki(
        path, Passphrase(_PASSPHRASE.encode()), agencies=("MEX-FGR", "USA-ATF"),
        suites=("classic",), scrypt_log2_n=12,
    )  # fmt: skip
    return path


def _record() -> dict[str, Any]:
    w = world()
    value: dict[str, Any] = json.loads(w.rtype.to_json(w.record))
    return value


def _publish_stdin(home: Path, line: bytes) -> Run:
    return run(home, ["publish", "--as", "MEX-FGR", "--type", "seizure", "--file", "-"], line)


# --- exchange publish: records from stdin and files -----------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=16,
)  # fmt: skip


def test_a_valid_record_gets_past_parsing(home: Path) -> None:
    # The control: a valid line is parsed and the run stops later, at the routing table.
    line = json.dumps(_record()).encode() + b"\n"
    result = _publish_stdin(home, line)
    assert "no routing table" in result.one_error_line(2)


@hostile(40)
@given(value=_JSON)
def test_random_json_is_one_line_and_exit_4(home: Path, value: Any) -> None:
    result = _publish_stdin(home, json.dumps(value).encode() + b"\n")
    assert result.one_error_line(4).startswith("error: <stdin>:1: seizure: ")


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


@hostile(40)
@given(data=st.data())
def test_a_field_of_the_wrong_type_is_one_line(home: Path, data: st.DataObject) -> None:
    record = _record()
    path = data.draw(st.sampled_from(sorted(_paths(record), key=str)))
    target: Any = record
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = data.draw(_JSON)
    result = _publish_stdin(home, json.dumps(record).encode() + b"\n")
    line = result.one_error_line(2, 4)
    if result.code == 4:  # refused as a record (the usual case) ...
        assert line.startswith("error: <stdin>:1: seizure: ")
    else:  # ... or still valid (an optional field, a value of the right type)
        assert "no routing table" in line


_DEEP = {
    "array": "[" * 100_000 + "]" * 100_000,
    "object": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "in-a-field": json.dumps(_record())[:-1] + ', "meta": ' + "[" * 100_000 + "]" * 100_000 + "}",
}


@pytest.mark.parametrize("shape", sorted(_DEEP))
def test_json_nested_100000_levels_is_refused(home: Path, shape: str) -> None:
    result = _publish_stdin(home, _DEEP[shape].encode() + b"\n")
    assert "recursion limit exceeded" in result.one_error_line(4)


@pytest.mark.parametrize(
    ("size", "says"),
    [
        (
            MAX_RECORD_BYTES // 2,
            "<stdin>:1: seizure: meta.sourceSystem: String should have at most",
        ),
        (2 * MAX_RECORD_BYTES, "<stdin>:1: line longer than the 1048576-byte record bound"),
    ],
)
def test_a_huge_string_field_is_refused(home: Path, size: int, says: str) -> None:
    record = _record()
    record["meta"]["sourceSystem"] = "x" * size
    result = _publish_stdin(home, json.dumps(record).encode() + b"\n")
    assert says in result.one_error_line(4)


def test_a_huge_line_is_refused_without_holding_it(home: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    with big.open("wb") as f:
        f.write(b'{"meta": "' + b"x" * (8 << 20))  # 8 MiB, no newline: endless-stdin-like
    results: list[Run] = []
    args = ["publish", "--as", "MEX-FGR", "--type", "seizure", "--file", str(big)]
    peak = peak_kib(lambda: results.append(run(home, args)))
    assert "line longer than the 1048576-byte record bound" in results[0].one_error_line(4)
    assert peak < 4 * 1024  # one bounded line, not 8 MiB


@hostile(60)
@given(data=st.binary(min_size=1, max_size=512))
def test_random_bytes_on_stdin_are_one_line(home: Path, data: bytes) -> None:
    result = _publish_stdin(home, data)
    # Blank input has no records; anything else is not a valid record (or not UTF-8).
    assert result.one_error_line(4).startswith("error: <stdin>")


# --- exchange envelope: records and envelopes from files ------------------------------------


@pytest.mark.parametrize("text", [*_DEEP.values(), "[]", '"x"', "{}", "\xff"])
def test_envelope_seal_refuses_hostile_record_files(home: Path, tmp_path: Path, text: str) -> None:
    rec = tmp_path / "rec.json"
    rec.write_bytes(text.encode("utf-8", "surrogateescape"))
    args = ["envelope", "seal", "--as", "MEX-FGR", "--type", "seizure", "--file", str(rec),
            "--out", str(tmp_path / "env.bin")]  # fmt: skip
    assert run(home, args).one_error_line(2).startswith("error: seizure: ")
    assert not (tmp_path / "env.bin").exists()


@hostile(25, deadline_s=5)
@given(blob=st.binary(max_size=2048))
def test_envelope_verify_refuses_random_files(home: Path, blob: bytes) -> None:
    path = home / "random.bin"
    path.write_bytes(blob)
    line = run(home, ["envelope", "verify", str(path)]).one_error_line(4)
    assert line.removeprefix("error: envelope rejected: ") in _DECODER_REASONS


def test_envelope_files_beyond_the_bound_are_not_read(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "huge.bin"
    with path.open("wb") as f:
        f.truncate(2 << 30)  # sparse: a 2 GiB envelope file
    results: list[Run] = []
    peak = peak_kib(lambda: results.append(run(home, ["envelope", "verify", str(path)])))
    assert "is larger than 1048576 bytes" in results[0].one_error_line(2)
    assert peak < 4 * 1024


def test_truncated_and_flipped_envelopes_are_rejected_by_open(home: Path, tmp_path: Path) -> None:
    rec, env = tmp_path / "rec.json", tmp_path / "env.bin"
    rec.write_text(json.dumps(_record()), encoding="utf-8")
    seal = ["envelope", "seal", "--as", "MEX-FGR", "--type", "seizure", "--file", str(rec),
            "--out", str(env), "--to", "USA-ATF", "--suite", "classic"]  # fmt: skip
    sealed = run(home, seal)
    assert sealed.code == 0, sealed.err
    good = env.read_bytes()
    opened = run(home, ["envelope", "open", str(env), "--as", "USA-ATF"])
    assert opened.code == 0
    assert json.loads(opened.out) == _record()
    bad = tmp_path / "bad.bin"
    for blob, reason in [
        (good[: len(good) // 2], "malformed"),
        (good[:3], "malformed"),
        (good[:-10] + bytes([good[-10] ^ 1]) + good[-9:], "bad_signature"),
    ]:
        bad.write_bytes(blob)
        line = run(home, ["envelope", "open", str(bad), "--as", "USA-ATF"]).one_error_line(4)
        assert line == f"error: envelope rejected: {reason}"
