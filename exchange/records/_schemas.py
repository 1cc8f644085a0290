"""Loading Avro schemas from ``schemas/avro``. Unstable: not public API.

Layout: ``common/<Name>.avsc`` holds one shared named type each (namespace
``exchange.common``); ``<subject>/v<N>.avsc`` holds every kept version of one subject. A
version file refers to shared types by full name, and :func:`compose` inlines each shared
definition at its first use, so every version becomes one self-contained schema: that
is what fastavro and the Avro compatibility checker parse, and what the fingerprint
(SHA-256 of the Parsing Canonical Form) identifies.

A version file may define a shared name inline; the inline definition then wins. That is
how a shared type evolves without rewriting kept versions (see docs/records.md).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import to_parsing_canonical_form

from exchange.errors import SchemaError

__all__ = ["SchemaVersion", "compose", "load_common", "load_version", "schema_root"]

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})
_KEYWORD_TYPES = _NAMED | {"array", "map"}
_VERSION_FILE = re.compile(r"\Av([1-9][0-9]{0,3})\.avsc\Z")
# Schema files are our own, but bound them anyway: a runaway file should fail loudly.
_MAX_SCHEMA_FILE_BYTES = 1 << 20
COMMON_DIR = "common"


def schema_root() -> Path:
    """Locate the Avro schema tree.

    A wheel carries the schemas at ``exchange/_schemas`` (pyproject force-include); a
    source or editable checkout has them at ``<repo>/schemas/avro``.

    Returns:
        The directory holding ``common/`` and one directory per subject.

    Raises:
        SchemaError: neither location exists.
    """
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_schemas", package.parent / "schemas" / "avro"):
        if (candidate / COMMON_DIR).is_dir():
            return candidate
    raise SchemaError(
        f"no Avro schemas found at {package / '_schemas'} or {package.parent / 'schemas/avro'}; "
        "reinstall the package or run from a source checkout"
    )


def version_number(path: Path) -> int | None:
    """Return N for a ``vN.avsc`` file name, else None."""
    match = _VERSION_FILE.match(path.name)
    return int(match.group(1)) if match else None


def read_json(path: Path) -> Any:
    """Read one schema file as JSON.

    Raises:
        SchemaError: the file is unreadable, too large or not JSON.
    """
    try:
        raw = path.read_bytes()
        if len(raw) > _MAX_SCHEMA_FILE_BYTES:
            raise SchemaError(f"{path}: {len(raw)} bytes exceeds the 1 MiB schema file bound")
        return json.loads(raw)
    except (OSError, ValueError) as exc:
        raise SchemaError(f"{path}: cannot read schema: {exc}") from exc


def _is_named(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    return isinstance(kind, str) and kind in _NAMED and isinstance(node.get("name"), str)


def _full_name(node: Mapping[str, Any], namespace: str | None) -> str:
    name = str(node["name"])
    if "." in name:
        return name
    own = node.get("namespace", namespace)
    return f"{own}.{name}" if own else name


def load_common(root: Path) -> dict[str, dict[str, Any]]:
    """Load every shared type under ``root/common``, keyed by full name.

    Raises:
        SchemaError: a file is unreadable, is not one named type, or its type name does not
            match its file name.
    """
    shared: dict[str, dict[str, Any]] = {}
    for path in sorted((root / COMMON_DIR).glob("*.avsc")):
        node = read_json(path)
        if not isinstance(node, dict) or not _is_named(node):
            raise SchemaError(f"{path}: a shared type file must hold one named type")
        full = _full_name(node, None)
        if full.rsplit(".", 1)[-1] != path.stem:
            raise SchemaError(f"{path}: defines {full}, expected the name {path.stem}")
        shared[full] = node
    return shared


def _defined_names(node: Any, namespace: str | None, out: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _defined_names(item, namespace, out)
    elif isinstance(node, dict):
        if _is_named(node):
            full = _full_name(node, namespace)
            out.add(full)
            namespace = full.rpartition(".")[0] or None
        for key in ("type", "items", "values", "fields"):
            if key in node:
                _defined_names(node[key], namespace, out)


def compose(document: Any, shared: Mapping[str, Mapping[str, Any]]) -> Any:
    """Inline shared types at their first use, giving one self-contained schema.

    Args:
        document: a parsed schema file (JSON value).
        shared: shared types by full name, from :func:`load_common`.

    Returns:
        A new JSON value; ``document`` and ``shared`` are not modified.
    """
    seen: set[str] = set()
    _defined_names(document, None, seen)  # inline definitions take precedence

    def expand(node: Any, namespace: str | None) -> Any:
        if isinstance(node, str):
            if node in _PRIMITIVES:
                return node
            full = node if "." in node or not namespace else f"{namespace}.{node}"
            if full in shared and full not in seen:
                seen.add(full)  # before recursing, so recursive types terminate
                return expand(copy.deepcopy(dict(shared[full])), None)
            return node
        if isinstance(node, list):
            return [expand(item, namespace) for item in node]
        if not isinstance(node, dict):
            return node
        out = dict(node)
        if _is_named(node):
            namespace = _full_name(node, namespace).rpartition(".")[0] or None
        if isinstance(node.get("fields"), list):
            out["fields"] = [
                {**f, "type": expand(f.get("type"), namespace)} if isinstance(f, dict) else f
                for f in node["fields"]
            ]
        for key in ("items", "values"):
            if key in node:
                out[key] = expand(node[key], namespace)
        if "type" in node and not (
            isinstance(node["type"], str) and node["type"] in _KEYWORD_TYPES
        ):
            out["type"] = expand(node["type"], namespace)  # e.g. {"type": "exchange.common.X"}
        return out

    return expand(document, None)


@dataclass(frozen=True, eq=False)
class SchemaVersion:
    """One kept schema version, composed and parsed.

    Attributes:
        subject: the directory name, e.g. ``"seizure"``.
        version: N of ``vN.avsc``.
        path: the version file.
        full_name: the Avro full name of the top-level type.
        schema: the composed, self-contained schema (JSON value).
        parsed: the fastavro-parsed schema, for encoding.
        reading: the same schema parsed for decoding, with ``uuid`` logical types read as
            the plain strings they are on the wire (see :func:`_uuids_as_strings`).
        canonical_form: the Parsing Canonical Form.
        fingerprint: SHA-256 of the Parsing Canonical Form (32 bytes).
    """

    subject: str
    version: int
    path: Path
    full_name: str
    schema: dict[str, Any] = field(repr=False)
    parsed: Any = field(repr=False)
    reading: Any = field(repr=False)
    canonical_form: str = field(repr=False)
    fingerprint: bytes


def parse_composed(composed: Any, path: Path, subject: str, version: int) -> SchemaVersion:
    """Parse a composed schema with fastavro and fingerprint it.

    Raises:
        SchemaError: the schema is not a valid Avro named schema.
    """
    if not isinstance(composed, dict) or not _is_named(composed):
        raise SchemaError(f"{path}: the top level must be a named type")
    try:
        parsed = fastavro.parse_schema(copy.deepcopy(composed))
        reading = fastavro.parse_schema(_uuids_as_strings(composed))
        canonical = to_parsing_canonical_form(parsed)
    except (fastavro.schema.SchemaParseException, fastavro.schema.UnknownType) as exc:
        raise SchemaError(f"{path}: invalid Avro schema: {exc}") from exc
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        # fastavro reports some malformed schemas with built-in exceptions.
        raise SchemaError(f"{path}: invalid Avro schema: {exc!r}") from exc
    return SchemaVersion(
        subject=subject,
        version=version,
        path=path,
        full_name=_full_name(composed, None),
        schema=composed,
        parsed=parsed,
        reading=reading,
        canonical_form=canonical,
        fingerprint=hashlib.sha256(canonical.encode()).digest(),
    )


def _uuids_as_strings(node: Any) -> Any:
    """A deep copy of a schema without ``"logicalType": "uuid"`` annotations.

    A uuid is an Avro string on the wire, so the bytes read the same; but fastavro turns
    each into a ``uuid.UUID`` that the models (canonical-string ids) would only convert back.
    Decoding with this copy saves both conversions for every id of every consumed record.
    """
    if isinstance(node, list):
        return [_uuids_as_strings(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: _uuids_as_strings(value)
        for key, value in node.items()
        if not (key == "logicalType" and value == "uuid")
    }


def load_version(path: Path, shared: Mapping[str, Mapping[str, Any]], root: Path) -> SchemaVersion:
    """Compose and parse one schema file.

    Args:
        path: a schema file below ``root``.
        shared: shared types from :func:`load_common`.
        root: the schema root; the subject is the directory path relative to it.

    Raises:
        SchemaError: the file is unreadable or not a valid Avro named schema.
    """
    return parse_composed(
        compose(read_json(path), shared),
        path,
        path.parent.relative_to(root).as_posix(),
        version_number(path) or 0,
    )
