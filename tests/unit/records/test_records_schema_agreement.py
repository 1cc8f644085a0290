"""Every pydantic model mirrors its Avro schema, field by field, nested types included.

The schemas are the source of truth; a model field that drifts (renamed, optional on one
side only, another type, another enum symbol set, another default) fails here.
"""

from __future__ import annotations

import copy
import types
import typing
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import pytest
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

from exchange.records import RECORD_TYPE_NAMES, record_type, record_types
from exchange.records._types import AvroLogical

_PRIMITIVE = {"int": int, "long": int, "double": float, "boolean": bool, "string": str}


def _named_types(node: Any, out: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Index every named type of a composed schema by full name (later uses are by name)."""
    if isinstance(node, list):
        for item in node:
            _named_types(item, out)
    elif isinstance(node, dict):
        if node.get("type") in ("record", "enum", "fixed"):
            out[node["name"]] = node
        for key in ("type", "items", "fields"):
            if key in node:
                _named_types(node[key], out)
    return out


def _split(annotation: Any) -> tuple[Any, list[Any]]:
    """(bare type, Annotated metadata)."""
    if typing.get_origin(annotation) is typing.Annotated:
        bare, *meta = typing.get_args(annotation)
        inner, inner_meta = _split(bare)
        return inner, [*meta, *inner_meta]
    return annotation, []


def _optional_arg(annotation: Any) -> Any | None:
    """X for ``X | None``, else None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0]
    return None


class _Agreement:
    def __init__(self, names: dict[str, dict[str, Any]]) -> None:
        self.names = names
        self.seen_records: set[str] = set()

    def resolve(self, avro: Any) -> Any:
        return self.names[avro] if isinstance(avro, str) and avro in self.names else avro

    def type_(self, avro: Any, annotation: Any, metadata: list[Any], where: str) -> None:
        avro = self.resolve(avro)
        bare, more = _split(annotation)
        metadata = [*metadata, *more]
        logical = [m.name for m in metadata if isinstance(m, AvroLogical)]
        if isinstance(avro, str):
            assert avro in _PRIMITIVE, f"{where}: unexpected Avro type {avro}"
            assert bare is _PRIMITIVE[avro], f"{where}: {avro} vs {bare}"
            assert not logical, f"{where}: plain {avro} but model marks {logical}"
            return
        assert isinstance(avro, dict), f"{where}: unions other than optional are not used"
        kind = avro["type"]
        if avro.get("logicalType") == "uuid":
            assert bare is str, f"{where}: uuid vs {bare}"
            assert logical == ["uuid"], f"{where}: uuid without the AvroLogical marker"
        elif avro.get("logicalType") == "timestamp-micros":
            assert bare in (datetime, AwareDatetime), f"{where}: timestamp vs {bare}"
        elif avro.get("logicalType") == "date":
            assert bare is date, f"{where}: date vs {bare}"
        elif kind == "fixed":
            assert avro["size"] == 32, where
            assert bare is bytes, f"{where}: fixed vs {bare}"
            assert logical == [avro["name"]], f"{where}: fixed without the AvroLogical marker"
        elif kind == "enum":
            assert isinstance(bare, type), f"{where}: {bare}"
            assert issubclass(bare, StrEnum), f"{where}: {bare}"
            assert bare.__name__ == avro["name"].rsplit(".", 1)[-1], where
            assert [m.value for m in bare] == avro["symbols"], f"{where}: enum symbols differ"
            # Fail closed: every enum resolves unknown symbols to one of its own.
            assert avro.get("default") in avro["symbols"], f"{where}: enum without default"
        elif kind == "array":
            assert typing.get_origin(bare) is list, f"{where}: array vs {bare}"
            (item,) = typing.get_args(bare)
            self.type_(avro["items"], item, [], f"{where}[]")
        elif kind == "record":
            assert isinstance(bare, type), f"{where}: {bare}"
            assert issubclass(bare, BaseModel), f"{where}: {bare}"
            self.record(avro, bare, where)
        else:
            pytest.fail(f"{where}: unhandled Avro type {avro!r}")

    def field(self, avro_field: dict[str, Any], info: FieldInfo, where: str) -> None:
        avro_type = avro_field["type"]
        optional_avro = isinstance(avro_type, list)
        inner = _optional_arg(info.annotation)
        assert optional_avro == (inner is not None), f"{where}: optional on one side only"
        if optional_avro:
            assert avro_type[0] == "null", f"{where}: null must come first"
            assert len(avro_type) == 2, f"{where}: only ['null', T] unions are used"
            assert avro_field.get("default", "absent") is None, f"{where}: default null"
            assert not info.is_required(), f"{where}: optional in schema, required in model"
            assert info.default is None, f"{where}: model default {info.default!r}"
            self.type_(avro_type[1], inner, [], where)
            return
        if "default" in avro_field:
            assert not info.is_required(), f"{where}: schema default, model requires it"
            model_default = info.get_default(call_default_factory=True)
            assert model_default == avro_field["default"], f"{where}: defaults differ"
        else:
            assert info.is_required(), f"{where}: model default {info.default!r}, schema none"
        self.type_(avro_type, info.annotation, list(info.metadata), where)

    def record(self, avro: dict[str, Any], model: type[BaseModel], where: str) -> None:
        assert model.__name__ == avro["name"].rsplit(".", 1)[-1], f"{where}: record name"
        self.seen_records.add(avro["name"])
        by_alias = {info.alias: info for info in model.model_fields.values()}
        avro_fields = {f["name"]: f for f in avro["fields"]}
        assert list(by_alias) == list(avro_fields), f"{where}: field names or order differ"
        for name, avro_field in avro_fields.items():
            self.field(avro_field, by_alias[name], f"{where}.{name}")


@pytest.mark.parametrize("name", RECORD_TYPE_NAMES)
def test_model_mirrors_current_schema(name: str) -> None:
    rtype = record_type(name)
    schema = rtype.current.schema
    checker = _Agreement(_named_types(schema, {}))
    checker.record(schema, rtype.model, name)
    # Every record type defined in the schema was reached, so nested types were compared.
    defined = {n for n, node in checker.names.items() if node["type"] == "record"}
    assert checker.seen_records == defined


def test_tlp_and_caveat_fail_closed_in_the_schema() -> None:
    names = _named_types(record_type("seizure").current.schema, {})
    assert names["exchange.common.Tlp"]["default"] == "RED"
    assert names["exchange.common.Caveat"]["default"] == "UNKNOWN"
    handling = names["exchange.common.Handling"]
    assert next(f for f in handling["fields"] if f["name"] == "tlp")["default"] == "RED"


def test_schema_names_match_models() -> None:
    for rtype in record_types():
        assert rtype.current.full_name == rtype.schema_name == rtype.model.schema_name
        assert rtype.model.record_type_name == rtype.name


def _mutations() -> list[tuple[str, Any]]:
    def rename(s: dict[str, Any]) -> None:
        s["fields"][2]["name"] = "seizureNumber"

    def make_optional(s: dict[str, Any]) -> None:
        s["fields"][2]["type"] = ["null", "string"]
        s["fields"][2]["default"] = None

    def retype(s: dict[str, Any]) -> None:
        s["fields"][2]["type"] = "long"

    def drop_symbol(s: dict[str, Any]) -> None:
        context = next(f for f in s["fields"] if f["name"] == "context")
        context["type"]["symbols"] = [*context["type"]["symbols"][:-2], "OTHER"]

    def add_default(s: dict[str, Any]) -> None:
        s["fields"][2]["default"] = "x"

    def nested(s: dict[str, Any]) -> None:
        meta = s["fields"][0]["type"]
        meta["fields"][-1]["name"] = "language"

    return [
        ("rename", rename),
        ("optional", make_optional),
        ("retype", retype),
        ("enum", drop_symbol),
        ("default", add_default),
        ("nested", nested),
    ]


@pytest.mark.parametrize(("kind", "mutate"), _mutations(), ids=[m[0] for m in _mutations()])
def test_agreement_check_detects_drift(kind: str, mutate: Any) -> None:
    rtype = record_type("seizure")
    schema = copy.deepcopy(rtype.current.schema)
    mutate(schema)
    checker = _Agreement(_named_types(schema, {}))
    with pytest.raises(AssertionError):
        checker.record(schema, rtype.model, kind)
