"""The public surface of exchange.records, which other packages code against, is pinned."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import exchange.records
from exchange.errors import SchemaError
from exchange.records import _schemas, record_type, record_types, schema_root

_PUBLIC = {
    "ISO_ALPHA3", "MAX_RECORD_BYTES", "RECORD_TYPE_NAMES", "AgencyRef", "BallisticRecord",
    "CaseRef", "Caveat", "EvidenceItemRef", "ExchangeRecord", "Firearm", "FirearmType",
    "Handling", "IntelligenceReport", "NationalMarking", "PermittedUse", "PersonRef",
    "PersonRole", "Place", "RecordMeta", "RecordType", "Retention", "RetentionDisposition",
    "SchemaCheckRow", "SchemaReport", "SchemaVersion", "SeizureRecord", "SerialStatus", "Tlp",
    "TraceRequest", "TraceResponse", "agency_country", "check_schemas", "record_type",
    "record_type_for_fingerprint", "record_types", "schema_root",
}  # fmt: skip


def test_exported_names_are_pinned() -> None:
    assert set(exchange.records.__all__) == _PUBLIC
    for name in _PUBLIC:
        assert getattr(exchange.records, name) is not None


def test_record_type_names_are_the_cli_names_in_order() -> None:
    names = ("seizure", "trace-request", "trace-response", "ballistic", "intel")
    assert names == exchange.records.RECORD_TYPE_NAMES
    assert tuple(t.name for t in record_types()) == names


def test_record_type_is_frozen_and_knows_its_versions() -> None:
    seizures = record_type("seizure")
    with pytest.raises(dataclasses.FrozenInstanceError):
        seizures.name = "other"  # type: ignore[misc]  # proving it is refused
    assert [v.version for v in seizures.versions] == [1, 2]
    assert seizures.current is seizures.versions[-1]
    assert seizures.schema_name == "exchange.records.SeizureRecord"


def test_records_are_immutable(one_of_each: dict[str, exchange.records.ExchangeRecord]) -> None:
    # A validated record is what gets encoded and signed; it must not change afterwards.
    record = one_of_each["intel"]
    with pytest.raises(ValueError, match="frozen"):
        record.meta.record_id = "x"  # type: ignore[misc]  # proving it is refused


def test_schema_root_prefers_the_packaged_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Wheels carry schemas/avro as exchange/_schemas (pyproject force-include).
    fake_module = tmp_path / "exchange" / "records" / "_schemas.py"
    (tmp_path / "exchange" / "_schemas" / "common").mkdir(parents=True)
    (tmp_path / "schemas" / "avro" / "common").mkdir(parents=True)
    monkeypatch.setattr(_schemas, "__file__", str(fake_module))
    assert schema_root() == tmp_path / "exchange" / "_schemas"


def test_schema_root_falls_back_to_the_source_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_module = tmp_path / "exchange" / "records" / "_schemas.py"
    (tmp_path / "schemas" / "avro" / "common").mkdir(parents=True)
    monkeypatch.setattr(_schemas, "__file__", str(fake_module))
    assert schema_root() == tmp_path / "schemas" / "avro"


def test_schema_root_missing_is_a_schema_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_schemas, "__file__", str(tmp_path / "exchange" / "records" / "x.py"))
    with pytest.raises(SchemaError, match="no Avro schemas found"):
        schema_root()


def test_checkout_schema_root_is_the_repository_tree() -> None:
    assert schema_root() == Path(__file__).resolve().parents[3] / "schemas" / "avro"
