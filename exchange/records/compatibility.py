"""FULL_TRANSITIVE compatibility check of every kept schema version.

Long-retention topics hold records written under every version ever shipped, and
consumers upgrade at different times on each side of the border. So each new version
must be readable by every earlier version (forward) and must read every earlier version
(backward): FULL_TRANSITIVE. The proof uses Apache Avro's own
``ReaderWriterCompatibilityChecker`` on the composed schemas, both directions, all pairs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import avro.errors
import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from exchange.errors import SchemaError
from exchange.records._schemas import (
    COMMON_DIR,
    SchemaVersion,
    compose,
    load_common,
    load_version,
    parse_composed,
    schema_root,
    version_number,
)

__all__ = ["SchemaCheckRow", "SchemaReport", "check_schemas"]


@dataclass(frozen=True)
class SchemaCheckRow:
    """The outcome for one schema file.

    Attributes:
        subject: the subject directory (``"seizure"``), or ``"common"`` for shared types.
        version: N of ``vN.avsc``; None for shared types and unversioned files.
        path: the file, relative to the schema root.
        full_name: Avro full name of the top-level type, when the file parsed.
        fingerprint: SHA-256 of the Parsing Canonical Form, when the file parsed.
        result: what was proven, or the first problem.
    """

    subject: str
    version: int | None
    path: str
    full_name: str | None
    fingerprint: bytes | None
    result: str


@dataclass(frozen=True)
class SchemaReport:
    """Every schema file checked, with one line per problem found."""

    root: Path
    rows: tuple[SchemaCheckRow, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when every schema parsed and every compatibility proof held."""
        return not self.problems

    def raise_for_problems(self) -> None:
        """Raise when the report has problems.

        Raises:
            SchemaError: naming the number of problems and the first one.
        """
        if self.problems:
            more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
            raise SchemaError(f"schema check failed: {self.problems[0]}{more}")


def _avro_parse(version: SchemaVersion) -> Any:
    try:
        return avro.schema.parse(json.dumps(version.schema))
    except avro.errors.AvroException as exc:
        raise SchemaError(f"{version.path}: Apache Avro rejects the schema: {exc}") from exc


def _incompatibility(reader: Any, writer: Any) -> str | None:
    # A fresh checker per pair: its memo table is keyed by object identity.
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]  # avro is untyped
    result = checker.get_compatibility(reader, writer)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return None
    kinds = ", ".join(sorted({kind.value for kind in result.incompatibilities}))
    where = ", ".join(sorted(result.locations))
    return f"{kinds} at {where}: {'; '.join(sorted(result.messages))}"


def _logical(node: Any) -> str | None:
    if isinstance(node, list):
        return next((lt for lt in map(_logical, node) if lt), None)
    return str(node["logicalType"]) if isinstance(node, dict) and "logicalType" in node else None


def _field_logical_types(
    node: Any, path: str, named: dict[str, Any], out: dict[str, Any], active: frozenset[str]
) -> None:
    """Map every field path to its logical type (``uuid``, ``timestamp-micros``) or None."""
    if isinstance(node, str):
        node = named.get(node, node)
    if isinstance(node, list):
        for branch in node:
            _field_logical_types(branch, path, named, out, active)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind in ("enum", "fixed"):
        named[node["name"]] = node
    elif kind == "record" and node["name"] not in active:  # stop at recursive types
        named[node["name"]] = node
        for field in node["fields"]:
            child = f"{path}.{field['name']}" if path else field["name"]
            out[child] = _logical(field["type"])
            _field_logical_types(field["type"], child, named, out, active | {node["name"]})
    elif kind == "array":
        out[f"{path}[]"] = _logical(node["items"])
        _field_logical_types(node["items"], f"{path}[]", named, out, active)


def _logical_type_changes(new: SchemaVersion, old: SchemaVersion) -> list[str]:
    # The Avro checker and the canonical form both ignore logical types, yet reading a
    # timestamp-micros as a plain long (or a uuid as any string) silently changes meaning.
    mine: dict[str, Any] = {}
    theirs: dict[str, Any] = {}
    _field_logical_types(new.schema, "", {}, mine, frozenset())
    _field_logical_types(old.schema, "", {}, theirs, frozenset())
    return [
        f"logical type of {path} changed from {theirs[path]} to {mine[path]} since v{old.version}"
        for path in sorted(set(mine) & set(theirs))
        if mine[path] != theirs[path]
    ]


def _check_subject(subject: str, versions: list[SchemaVersion], problems: list[str]) -> list[str]:
    """Prove FULL_TRANSITIVE for one subject; return one result text per version."""
    numbers = [v.version for v in versions]
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"{subject}: versions {numbers} are not v1..vN; every version is kept")
    try:
        apache = [_avro_parse(v) for v in versions]
    except SchemaError as exc:
        problems.append(str(exc))
        return [f"NOT CHECKED: {exc}"] * len(versions)
    results = []
    for index, new in enumerate(versions):
        own: list[str] = []
        if new.full_name != versions[0].full_name:
            own.append(f"renames {versions[0].full_name} to {new.full_name}")
        for old_index, old in enumerate(versions[:index]):
            own.extend(_logical_type_changes(new, old))
            # backward: the new reader reads old data; forward: old readers read new data.
            for direction, reader, writer in (
                ("backward", apache[index], apache[old_index]),
                ("forward", apache[old_index], apache[index]),
            ):
                issue = _incompatibility(reader, writer)
                if issue is not None:
                    own.append(f"not {direction} compatible with v{old.version}: {issue}")
        problems.extend(f"{subject} v{new.version}: {issue}" for issue in own)
        if own:
            results.append(f"INCOMPATIBLE: {own[0]}")
        elif index == 0:
            results.append("ok (first version)")
        else:
            earlier = "v1" if index == 1 else f"v1..v{versions[index - 1].version}"
            results.append(f"full-transitive with {earlier}")
    return results


def check_schemas(root: Path | None = None) -> SchemaReport:
    """Parse every schema under ``root`` and prove FULL_TRANSITIVE compatibility.

    Every ``vN.avsc`` of a subject is checked against every earlier version of the same
    subject, both as reader and as writer. Shared types are parsed on their own too.
    Other ``.avsc`` files are parsed but have no version history to check. A fingerprint
    must not be shared by two subjects, since it alone selects the record type when
    decoding; within a subject, versions that differ only in defaults or documentation
    share a fingerprint and write identical bytes, which is harmless.

    Args:
        root: the schema tree; defaults to :func:`~exchange.records.schema_root`.

    Returns:
        A report listing every file and every problem; it does not raise for bad schemas.

    Raises:
        SchemaError: ``root`` is None and no schema tree can be located.
    """
    root = schema_root() if root is None else root
    rows: list[SchemaCheckRow] = []
    problems: list[str] = []
    try:
        shared = load_common(root)
    except SchemaError as exc:
        return SchemaReport(root, (), (str(exc),))
    for name, node in sorted(shared.items()):
        path = root / COMMON_DIR / f"{name.rsplit('.', 1)[-1]}.avsc"
        rel = path.relative_to(root).as_posix()
        try:
            parse_composed(compose(node, shared), path, COMMON_DIR, 0)
            rows.append(SchemaCheckRow(COMMON_DIR, None, rel, name, None, "ok (shared type)"))
        except SchemaError as exc:
            problems.append(str(exc))
            rows.append(SchemaCheckRow(COMMON_DIR, None, rel, name, None, f"PARSE ERROR: {exc}"))

    subjects: dict[str, list[SchemaVersion]] = {}
    for path in sorted(root.rglob("*.avsc")):
        if path.relative_to(root).parts[0] == COMMON_DIR:
            continue
        rel = path.relative_to(root).as_posix()
        try:
            version = load_version(path, shared, root)
        except SchemaError as exc:
            problems.append(str(exc))
            rows.append(SchemaCheckRow("?", None, rel, None, None, f"PARSE ERROR: {exc}"))
            continue
        if version_number(path) is None:
            # Not ours to version (e.g. another component's layout): parse-checked only.
            rows.append(
                SchemaCheckRow(
                    version.subject,
                    None,
                    rel,
                    version.full_name,
                    version.fingerprint,
                    "ok (unversioned file: parsed only)",
                )
            )
            continue
        subjects.setdefault(version.subject, []).append(version)

    owners: dict[bytes, SchemaVersion] = {}
    for subject in sorted(subjects):
        versions = sorted(subjects[subject], key=lambda v: v.version)
        results = _check_subject(subject, versions, problems)
        for version, proven in zip(versions, results, strict=True):
            result = proven
            twin = owners.setdefault(version.fingerprint, version)
            if twin.subject != subject:
                problems.append(
                    f"{subject} v{version.version} has the fingerprint of {twin.subject} "
                    f"v{twin.version}; a fingerprint must identify exactly one record type"
                )
            elif twin is not version:
                # Versions that differ only in defaults, docs or aliases write the same
                # bytes (the canonical form drops those), so either decodes the data.
                result += f" (same wire format as v{twin.version})"
            rows.append(
                SchemaCheckRow(
                    subject,
                    version.version,
                    version.path.relative_to(root).as_posix(),
                    version.full_name,
                    version.fingerprint,
                    result,
                )
            )
    return SchemaReport(root, tuple(rows), tuple(problems))
