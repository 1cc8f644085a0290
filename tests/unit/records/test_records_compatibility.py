"""The schema check: every kept version parses and is FULL_TRANSITIVE compatible.

Incompatible changes are built in a copy of the schema tree under tmp_path, so the real
tree is never touched, and each must be reported as a problem by the library and by
``exchange schemas check``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from exchange.cli import main
from exchange.cli.schemas import schemas
from exchange.errors import SchemaError
from exchange.records import check_schemas, schema_root

Mutation = Callable[[dict[str, Any]], None]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "avro"
    shutil.copytree(schema_root(), root)
    return root


def _add_seizure_version(root: Path, mutate: Mutation, version: int = 3) -> None:
    schema = json.loads((root / "seizure" / "v2.avsc").read_text())
    mutate(schema)
    (root / "seizure" / f"v{version}.avsc").write_text(json.dumps(schema))


def _field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    field: dict[str, Any] = next(f for f in schema["fields"] if f["name"] == name)
    return field


def test_shipped_schemas_hold() -> None:
    report = check_schemas()
    assert report.ok, report.problems
    report.raise_for_problems()  # no exception when ok
    versions = {(r.subject, r.version) for r in report.rows if r.version is not None}
    assert {("seizure", 1), ("seizure", 2), ("trace-request", 1), ("trace-response", 1)} <= versions
    assert {("ballistic", 1), ("intel", 1)} <= versions
    seizure_v2 = next(r for r in report.rows if (r.subject, r.version) == ("seizure", 2))
    assert seizure_v2.result == "full-transitive with v1"
    assert seizure_v2.fingerprint is not None
    assert len(seizure_v2.fingerprint) == 32


def test_compatible_optional_field_passes(tree: Path) -> None:
    def add_optional(s: dict[str, Any]) -> None:
        s["fields"].append({"name": "customsRef", "type": ["null", "string"], "default": None})

    _add_seizure_version(tree, add_optional)
    report = check_schemas(tree)
    assert report.ok, report.problems
    v3 = next(r for r in report.rows if (r.subject, r.version) == ("seizure", 3))
    assert v3.result == "full-transitive with v1..v2"


def _required_field(s: dict[str, Any]) -> None:
    s["fields"].append({"name": "customsRef", "type": "string"})


def _drop_required(s: dict[str, Any]) -> None:
    s["fields"].remove(_field(s, "seizureId"))


def _retype(s: dict[str, Any]) -> None:
    _field(s, "seizedAt")["type"] = "string"


def _enum_without_default(s: dict[str, Any]) -> None:
    # Without a default, a reader cannot map the dropped symbol in old data to anything.
    context = _field(s, "context")["type"]
    context["symbols"].remove("ABANDONED")
    del context["default"]


def _drop_logical_type(s: dict[str, Any]) -> None:
    # Same bytes, same canonical form, Avro-compatible: only the meaning changes.
    _field(s, "seizedAt")["type"] = "long"


def _rename_record(s: dict[str, Any]) -> None:
    s["name"] = "exchange.records.Seizure"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_required_field, "not backward compatible with v1: reader_field_missing_default_value"),
        (_drop_required, "not forward compatible with v1: reader_field_missing_default_value"),
        (_retype, "not backward compatible with v1: type_mismatch"),
        (_enum_without_default, "not backward compatible with v1: missing_enum_symbols"),
        (_rename_record, "renames exchange.records.SeizureRecord"),
        (_drop_logical_type, "logical type of seizedAt changed from timestamp-micros to None"),
    ],
    ids=["required-field", "dropped-field", "retyped", "enum-symbol", "renamed", "logical-type"],
)
def test_incompatible_change_detected(tree: Path, mutate: Mutation, expected: str) -> None:
    _add_seizure_version(tree, mutate)
    report = check_schemas(tree)
    assert not report.ok
    assert any(p.startswith("seizure v3: ") and expected in p for p in report.problems), (
        report.problems
    )
    with pytest.raises(SchemaError, match="schema check failed: seizure v3"):
        report.raise_for_problems()


def _widget(root: Path, version: int, fields: list[dict[str, Any]]) -> None:
    schema = {"type": "record", "name": "exchange.test.Widget", "fields": fields}
    (root / "widget").mkdir(exist_ok=True)
    (root / "widget" / f"v{version}.avsc").write_text(json.dumps(schema))


def test_every_earlier_version_is_checked_not_only_the_last(tree: Path) -> None:
    # Compatibility is not transitive: v2 gives "a" a default, v3 drops "a". v3 is fine
    # against v2, but a v1 reader (no default for "a") cannot read v3 data.
    _widget(tree, 1, [{"name": "a", "type": "string"}])
    _widget(tree, 2, [{"name": "a", "type": "string", "default": "d"}])
    optional_c = {"name": "c", "type": ["null", "string"], "default": None}
    _widget(tree, 3, [optional_c])
    problems = check_schemas(tree).problems
    assert [p.split(": ")[0:2] for p in problems] == [
        ["widget v3", "not forward compatible with v1"]
    ]


def test_fingerprint_shared_by_two_subjects_is_a_problem(tree: Path) -> None:
    # A fingerprint alone picks the record type when decoding: it must be unambiguous.
    (tree / "seizure-copy").mkdir()
    shutil.copy(tree / "seizure" / "v1.avsc", tree / "seizure-copy" / "v1.avsc")
    report = check_schemas(tree)
    assert report.problems == (
        "seizure-copy v1 has the fingerprint of seizure v1; "
        "a fingerprint must identify exactly one record type",
    )


def test_same_wire_format_within_a_subject_is_noted(tree: Path) -> None:
    # Giving a field a default (to drop it later) changes no bytes, so no fingerprint.
    _widget(tree, 1, [{"name": "a", "type": "string"}])
    _widget(tree, 2, [{"name": "a", "type": "string", "default": "d"}])
    report = check_schemas(tree)
    assert report.ok, report.problems
    v2 = next(r for r in report.rows if (r.subject, r.version) == ("widget", 2))
    assert v2.result == "full-transitive with v1 (same wire format as v1)"


def test_missing_version_is_a_problem(tree: Path) -> None:
    (tree / "seizure" / "v1.avsc").unlink()
    report = check_schemas(tree)
    assert any("versions [2] are not v1..vN" in p for p in report.problems)


def test_unparsable_schema_is_a_problem(tree: Path) -> None:
    (tree / "intel" / "v2.avsc").write_text("{not json")
    report = check_schemas(tree)
    assert any("intel/v2.avsc: cannot read schema" in p for p in report.problems)


def test_unknown_type_reference_is_a_problem(tree: Path) -> None:
    def bad_reference(s: dict[str, Any]) -> None:
        _field(s, "location")["type"] = "exchange.common.Nowhere"

    _add_seizure_version(tree, bad_reference)
    report = check_schemas(tree)
    assert any("seizure/v3.avsc: invalid Avro schema" in p for p in report.problems)


def test_shared_type_evolves_by_inline_definition(tree: Path) -> None:
    # docs/records.md: kept versions keep the shared file; a new version redefines it.
    place = json.loads((tree / "common" / "Place.avsc").read_text())
    place["fields"].append({"name": "plusCode", "type": ["null", "string"], "default": None})

    def inline_place(s: dict[str, Any]) -> None:
        _field(s, "location")["type"] = place

    _add_seizure_version(tree, inline_place)
    report = check_schemas(tree)
    assert report.ok, report.problems
    rows = {r.version: r for r in report.rows if r.subject == "seizure"}
    assert rows[3].fingerprint != rows[2].fingerprint


def test_cli_check_prints_every_version_and_exits_zero() -> None:
    result = CliRunner().invoke(schemas, ["check"])
    assert result.exit_code == 0, result.output
    for subject in ("seizure", "trace-request", "trace-response", "ballistic", "intel"):
        assert subject in result.output
    assert "full-transitive with v1" in result.output
    fingerprint = check_schemas().rows[-1].fingerprint
    assert fingerprint is not None
    assert fingerprint.hex() in result.output


def test_cli_check_reports_each_problem_and_fails(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_seizure_version(tree, _required_field)
    (tree / "intel" / "v2.avsc").write_text("[]")
    code = main(["schemas", "check", "--root", str(tree)])
    err = capsys.readouterr().err.splitlines()
    assert code == 4  # DataError -> refused
    problems = [line for line in err if line.startswith("problem: ")]
    assert len(problems) >= 3  # backward and forward for seizure v3, plus intel v2
    assert err[-1].startswith("error: ")
    assert "schema problem(s)" in err[-1]
