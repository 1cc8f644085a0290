"""Record types: the binding of a CLI name, an Avro schema history and a pydantic model.

Unstable module; the public names are re-exported by :mod:`exchange.records`.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import fastavro
from pydantic import ValidationError

from exchange.errors import RecordValidationError, SchemaError
from exchange.records._schemas import SchemaVersion, load_common, load_version, schema_root
from exchange.records.ballistic import BallisticRecord
from exchange.records.common import ExchangeRecord
from exchange.records.intel import IntelligenceReport
from exchange.records.seizure import SeizureRecord
from exchange.records.trace import TraceRequest, TraceResponse

__all__ = [
    "MAX_RECORD_BYTES",
    "RECORD_TYPE_NAMES",
    "RecordType",
    "record_type",
    "record_type_for_fingerprint",
    "record_types",
]

#: Upper bound on one encoded record (Avro or JSON), checked before any parsing.
MAX_RECORD_BYTES = 1 << 20

_MODELS: tuple[type[ExchangeRecord], ...] = (
    SeizureRecord,
    TraceRequest,
    TraceResponse,
    BallisticRecord,
    IntelligenceReport,
)
RECORD_TYPE_NAMES: tuple[str, ...] = tuple(m.record_type_name for m in _MODELS)

# Everything fastavro raises on malformed or truncated input: short reads, bad varints,
# out-of-range union/enum indexes, invalid UTF-8 (a ValueError), impossible dates.
# Pinned by the fuzz test in tests/unit/records/test_codec.py.
_AVRO_READ_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    ValueError,
    IndexError,
    KeyError,
    TypeError,
    OverflowError,
    struct.error,
    fastavro.read.SchemaResolutionError,
)
_AVRO_WRITE_ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, OverflowError)


def _one_line(name: str, exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "record"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    # "Value error, " is pydantic's prefix for our own validators' messages: noise here.
    message = first["msg"].removeprefix("Value error, ")
    return f"{name}: {where}: {message}{more}"


@dataclass(frozen=True, eq=False)
class RecordType:
    """One record family: its CLI name, model and every kept schema version.

    Attributes:
        name: CLI name, e.g. ``"seizure"``.
        schema_name: Avro full name, e.g. ``"exchange.records.SeizureRecord"``.
        model: the pydantic model class.
        fingerprint: SHA-256 of the Parsing Canonical Form of the current writer schema.
        versions: every kept schema version, oldest first; the last one is current.
    """

    name: str
    schema_name: str
    model: type[ExchangeRecord]
    fingerprint: bytes
    versions: tuple[SchemaVersion, ...] = field(repr=False)

    @property
    def current(self) -> SchemaVersion:
        """The schema version this release writes and reads into."""
        return self.versions[-1]

    def _check_instance(self, record: object) -> None:
        if not isinstance(record, self.model):
            raise TypeError(f"got {type(record).__name__}, expected {self.model.__name__}")

    def encode(self, record: ExchangeRecord) -> bytes:
        """Encode ``record`` as schemaless Avro binary of the current version.

        Args:
            record: an instance of :attr:`model`.

        Returns:
            The Avro bytes; identify them with :attr:`fingerprint`.

        Raises:
            TypeError: ``record`` is not an instance of :attr:`model`.
            RecordValidationError: the record cannot be encoded within the size bound.
        """
        self._check_instance(record)
        buffer = io.BytesIO()
        try:
            fastavro.schemaless_writer(buffer, self.current.parsed, record.model_dump())
        except _AVRO_WRITE_ERRORS as exc:
            raise RecordValidationError(
                f"{self.name}: cannot encode as {self.schema_name}: {exc}", record_type=self.name
            ) from exc
        data = buffer.getvalue()
        if len(data) > MAX_RECORD_BYTES:
            raise RecordValidationError(
                f"{self.name}: encoded record is {len(data)} bytes, over the "
                f"{MAX_RECORD_BYTES}-byte bound",
                record_type=self.name,
            )
        return data

    def decode(self, data: bytes, *, writer_fingerprint: bytes | None = None) -> ExchangeRecord:
        """Decode schemaless Avro bytes written with any kept version, then validate.

        Args:
            data: the Avro bytes, at most :data:`MAX_RECORD_BYTES`.
            writer_fingerprint: fingerprint of the writer schema; None means the current one.

        Returns:
            A validated instance of :attr:`model`.

        Raises:
            RecordValidationError: the input is oversized, the fingerprint is not a kept
                version of this type, the bytes are not valid Avro for the writer schema
                (including trailing bytes), or the decoded record fails validation.
        """
        if len(data) > MAX_RECORD_BYTES:
            raise RecordValidationError(
                f"{self.name}: {len(data)} bytes exceeds the {MAX_RECORD_BYTES}-byte bound",
                record_type=self.name,
            )
        writer = self.current
        if writer_fingerprint is not None and writer_fingerprint != writer.fingerprint:
            found = [v for v in self.versions if v.fingerprint == writer_fingerprint]
            if not found:
                raise RecordValidationError(
                    f"{self.name}: writer fingerprint {bytes(writer_fingerprint).hex()} is not "
                    f"a known {self.schema_name} version",
                    record_type=self.name,
                )
            writer = found[0]
        # Resolution is needed only when the writer is an older version.
        reader = None if writer is self.current else self.current.reading
        stream = io.BytesIO(data)
        try:
            raw = fastavro.schemaless_reader(stream, writer.reading, reader)
        except _AVRO_READ_ERRORS as exc:
            raise RecordValidationError(
                f"{self.name}: bytes are not a valid {self.schema_name} "
                f"v{writer.version} record ({type(exc).__name__})",
                record_type=self.name,
            ) from exc
        if stream.tell() != len(data):
            # Trailing bytes would let two different messages decode to the same record.
            raise RecordValidationError(
                f"{self.name}: {len(data) - stream.tell()} trailing bytes after the record",
                record_type=self.name,
            )
        return self._validate(raw)

    def _validate(self, raw: object) -> ExchangeRecord:
        try:
            return self.model.model_validate(raw)
        except ValidationError as exc:
            raise RecordValidationError(_one_line(self.name, exc), record_type=self.name) from exc

    def from_json(self, data: str | bytes | Mapping[str, Any]) -> ExchangeRecord:
        """Validate a record from JSON text or an already-parsed mapping (Avro field names).

        Args:
            data: JSON text or bytes (at most :data:`MAX_RECORD_BYTES`), or a mapping.

        Returns:
            A validated instance of :attr:`model`.

        Raises:
            RecordValidationError: oversized input, invalid JSON, or a validation failure;
                the one-line message names the first offending field.
        """
        if isinstance(data, Mapping):
            return self._validate(dict(data))
        if len(data) > MAX_RECORD_BYTES:
            raise RecordValidationError(
                f"{self.name}: JSON of {len(data)} bytes exceeds the {MAX_RECORD_BYTES}-byte bound",
                record_type=self.name,
            )
        try:
            return self.model.model_validate_json(data)
        except ValidationError as exc:
            raise RecordValidationError(_one_line(self.name, exc), record_type=self.name) from exc

    def to_json(self, record: ExchangeRecord) -> str:
        """Serialize ``record`` as compact JSON with Avro (camelCase) field names.

        Raises:
            TypeError: ``record`` is not an instance of :attr:`model`.
        """
        self._check_instance(record)
        return record.model_dump_json()


@cache
def _registry() -> tuple[RecordType, ...]:
    root = schema_root()
    shared = load_common(root)
    types = []
    for model in _MODELS:
        paths = sorted((root / model.record_type_name).glob("v*.avsc"))
        versions = sorted((load_version(p, shared, root) for p in paths), key=lambda v: v.version)
        if not versions or versions[-1].full_name != model.schema_name:
            raise SchemaError(
                f"{root / model.record_type_name}: expected versions of {model.schema_name}"
            )
        types.append(
            RecordType(
                name=model.record_type_name,
                schema_name=model.schema_name,
                model=model,
                fingerprint=versions[-1].fingerprint,
                versions=tuple(versions),
            )
        )
    return tuple(types)


def record_types() -> tuple[RecordType, ...]:
    """Every record type, in :data:`RECORD_TYPE_NAMES` order.

    Raises:
        SchemaError: the installed schemas cannot be loaded.
    """
    return _registry()


def record_type(name: str) -> RecordType:
    """Look up a record type by its CLI name.

    Args:
        name: one of :data:`RECORD_TYPE_NAMES`.

    Raises:
        RecordValidationError: the name is unknown (the message lists the known names).
        SchemaError: the installed schemas cannot be loaded.
    """
    for rtype in _registry():
        if rtype.name == name:
            return rtype
    raise RecordValidationError(
        f"unknown record type {name!r}; expected one of {', '.join(RECORD_TYPE_NAMES)}"
    )


def record_type_for_fingerprint(fingerprint: bytes) -> RecordType:
    """Find the record type one of whose kept schema versions has ``fingerprint``.

    Raises:
        RecordValidationError: no kept version of any record type has this fingerprint.
        SchemaError: the installed schemas cannot be loaded.
    """
    for rtype in _registry():
        if any(v.fingerprint == fingerprint for v in rtype.versions):
            return rtype
    raise RecordValidationError(
        f"unknown writer schema fingerprint {bytes(fingerprint).hex()[:64]}"
    )
