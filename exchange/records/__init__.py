"""Record contracts: pydantic models mirroring the Avro schemas in ``schemas/avro``.

Five record families travel over the bus, each with an Avro schema history (every
version kept, FULL_TRANSITIVE compatible) and one pydantic model that validates the
handling rules. A :class:`RecordType` binds them and converts between model, Avro bytes
and JSON::

    from exchange.records import record_type, record_type_for_fingerprint
    from exchange.records.sample import generate

    seizures = record_type("seizure")
    record = generate("seizure", count=1, seed=7)[0]
    data = seizures.encode(record)                      # schemaless Avro, current version
    fp = seizures.fingerprint                           # travels with the bytes
    again = record_type_for_fingerprint(fp).decode(data, writer_fingerprint=fp)
    assert again == record
    print(again.handling.tlp.label)                     # e.g. TLP:AMBER

Every failure on untrusted input is a :class:`~exchange.errors.RecordValidationError`.
"""

from __future__ import annotations

from exchange.records._registry import (
    MAX_RECORD_BYTES,
    RECORD_TYPE_NAMES,
    RecordType,
    record_type,
    record_type_for_fingerprint,
    record_types,
)
from exchange.records._schemas import SchemaVersion, schema_root
from exchange.records._types import ISO_ALPHA3, agency_country
from exchange.records.ballistic import BallisticRecord
from exchange.records.common import (
    CaseRef,
    EvidenceItemRef,
    ExchangeRecord,
    Firearm,
    FirearmType,
    PersonRef,
    PersonRole,
    Place,
    RecordMeta,
    SerialStatus,
)
from exchange.records.compatibility import SchemaCheckRow, SchemaReport, check_schemas
from exchange.records.handling import (
    AgencyRef,
    Caveat,
    Handling,
    NationalMarking,
    PermittedUse,
    Retention,
    RetentionDisposition,
    Tlp,
)
from exchange.records.intel import IntelligenceReport
from exchange.records.seizure import SeizureRecord
from exchange.records.trace import TraceRequest, TraceResponse

__all__ = [
    "ISO_ALPHA3",
    "MAX_RECORD_BYTES",
    "RECORD_TYPE_NAMES",
    "AgencyRef",
    "BallisticRecord",
    "CaseRef",
    "Caveat",
    "EvidenceItemRef",
    "ExchangeRecord",
    "Firearm",
    "FirearmType",
    "Handling",
    "IntelligenceReport",
    "NationalMarking",
    "PermittedUse",
    "PersonRef",
    "PersonRole",
    "Place",
    "RecordMeta",
    "RecordType",
    "Retention",
    "RetentionDisposition",
    "SchemaCheckRow",
    "SchemaReport",
    "SchemaVersion",
    "SeizureRecord",
    "SerialStatus",
    "Tlp",
    "TraceRequest",
    "TraceResponse",
    "agency_country",
    "check_schemas",
    "record_type",
    "record_type_for_fingerprint",
    "record_types",
    "schema_root",
]
