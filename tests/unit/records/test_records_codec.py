"""Avro and JSON round trips, schema resolution across versions, and hostile input.

Decoding takes bytes from untrusted peers: whatever arrives, the only exception that may
escape is RecordValidationError (never a raw fastavro or pydantic error).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import io
import json
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from exchange.errors import RecordValidationError
from exchange.records import (
    MAX_RECORD_BYTES,
    RECORD_TYPE_NAMES,
    ExchangeRecord,
    SeizureRecord,
    Tlp,
    record_type,
    record_type_for_fingerprint,
    record_types,
)
from exchange.records.sample import SampleCorpus, generate


def test_every_generated_record_round_trips_through_avro_and_json(corpus: SampleCorpus) -> None:
    seen = set()
    for record in corpus.records():
        rtype = record_type(record.record_type_name)
        data = rtype.encode(record)
        assert rtype.decode(data) == record
        assert rtype.decode(data, writer_fingerprint=rtype.fingerprint) == record
        assert rtype.from_json(rtype.to_json(record)) == record
        assert rtype.from_json(json.loads(rtype.to_json(record))) == record
        seen.add(rtype.name)
    assert seen == set(RECORD_TYPE_NAMES)


def test_fingerprint_is_sha256_of_the_parsing_canonical_form() -> None:
    for rtype in record_types():
        canonical = fastavro.schema.to_parsing_canonical_form(rtype.current.parsed)
        assert rtype.fingerprint == hashlib.sha256(canonical.encode()).digest()
        assert len(rtype.fingerprint) == 32
        for version in rtype.versions:
            assert record_type_for_fingerprint(version.fingerprint) is rtype


def _encode_with(parsed_schema: Any, datum: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed_schema, datum)
    return buffer.getvalue()


def test_data_written_with_v1_decodes_into_the_current_model(
    one_of_each: dict[str, ExchangeRecord],
) -> None:
    seizures = record_type("seizure")
    v1 = seizures.versions[0]
    assert v1.version == 1
    assert v1.fingerprint != seizures.fingerprint
    record = one_of_each["seizure"]
    assert isinstance(record, SeizureRecord)
    assert record.conveyance is not None
    datum = record.model_dump()
    del datum["conveyance"]  # v1 has no such field
    decoded = seizures.decode(_encode_with(v1.parsed, datum), writer_fingerprint=v1.fingerprint)
    assert decoded == record.model_copy(update={"conveyance": None})
    # The same bytes read as if they were current-version bytes are truncated: refused.
    with pytest.raises(RecordValidationError):
        seizures.decode(_encode_with(v1.parsed, datum))


def test_unknown_tlp_symbol_from_a_newer_writer_resolves_to_red(
    one_of_each: dict[str, ExchangeRecord],
) -> None:
    # A future writer adds a TLP level we do not know: Avro resolution must fail closed.
    seizures = record_type("seizure")
    schema = copy.deepcopy(seizures.current.schema)
    handling = schema["fields"][1]["type"]
    tlp_type = handling["fields"][0]["type"]
    tlp_type["symbols"] = [*tlp_type["symbols"], "BLACK"]
    writer = fastavro.parse_schema(schema)
    datum = one_of_each["seizure"].model_dump()
    datum["handling"]["tlp"] = "BLACK"

    def read(named: list[str] | None) -> dict[str, Any]:
        datum["handling"]["releasableToAgencies"] = named
        data = _encode_with(writer, datum)
        raw = fastavro.schemaless_reader(io.BytesIO(data), writer, seizures.current.parsed)
        assert isinstance(raw, dict)
        assert raw["handling"]["tlp"] == "RED"
        return raw

    originator = datum["handling"]["originator"]["agencyId"]
    assert SeizureRecord.model_validate(read([originator])).handling.tlp is Tlp.RED
    # As RED, a record without named recipients is refused outright (policy rule 3).
    with pytest.raises(ValidationError, match="require named recipients"):
        SeizureRecord.model_validate(read(None))


def test_unknown_fingerprint_is_refused() -> None:
    unknown = hashlib.sha256(b"no such schema").digest()
    with pytest.raises(RecordValidationError, match="not a known"):
        record_type("seizure").decode(b"\x00", writer_fingerprint=unknown)
    with pytest.raises(RecordValidationError, match="unknown writer schema fingerprint"):
        record_type_for_fingerprint(unknown)


def test_fingerprint_of_another_record_type_is_refused() -> None:
    with pytest.raises(RecordValidationError, match="not a known"):
        record_type("seizure").decode(b"", writer_fingerprint=record_type("intel").fingerprint)


def test_oversized_input_is_refused_before_parsing() -> None:
    big = b"\x00" * (MAX_RECORD_BYTES + 1)
    with pytest.raises(RecordValidationError, match="exceeds"):
        record_type("seizure").decode(big)
    with pytest.raises(RecordValidationError, match="exceeds"):
        record_type("seizure").from_json(big)


def test_trailing_bytes_are_refused(one_of_each: dict[str, ExchangeRecord]) -> None:
    rtype = record_type("ballistic")
    data = rtype.encode(one_of_each["ballistic"])
    with pytest.raises(RecordValidationError, match="1 trailing bytes"):
        rtype.decode(data + b"\x00")


def test_truncated_record_is_refused(one_of_each: dict[str, ExchangeRecord]) -> None:
    rtype = record_type("trace-request")
    data = rtype.encode(one_of_each["trace-request"])
    for cut in (1, len(data) // 2, len(data) - 1):
        with pytest.raises(RecordValidationError):
            rtype.decode(data[:cut])


@pytest.mark.parametrize("name", RECORD_TYPE_NAMES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage=st.binary(max_size=512))
def test_garbage_bytes_raise_only_record_validation_error(name: str, garbage: bytes) -> None:
    # Decoding garbage into a valid record is astronomically unlikely but not an error;
    # any exception other than RecordValidationError fails the test.
    with contextlib.suppress(RecordValidationError):
        record_type(name).decode(garbage)


@functools.cache
def _encoded_intel() -> bytes:
    return record_type("intel").encode(generate("intel", count=1, seed=5)[0])


@settings(max_examples=150, deadline=None)
@given(flip=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255))
def test_corrupted_record_raises_only_record_validation_error(flip: int, value: int) -> None:
    rtype = record_type("intel")
    data = bytearray(_encoded_intel())
    data[flip % len(data)] = value
    with contextlib.suppress(RecordValidationError):  # anything else fails the test
        rtype.decode(bytes(data))


def test_decode_error_hides_third_party_exception_type_but_chains_it() -> None:
    with pytest.raises(RecordValidationError) as info:
        record_type("seizure").decode(b"\xff\xff\xff")
    assert info.value.__cause__ is not None
    assert "seizure: bytes are not a valid exchange.records.SeizureRecord v2" in str(info.value)


def test_encode_rejects_a_record_of_another_type(one_of_each: dict[str, ExchangeRecord]) -> None:
    with pytest.raises(TypeError, match="expected SeizureRecord"):
        record_type("seizure").encode(one_of_each["intel"])
    with pytest.raises(TypeError, match="expected IntelligenceReport"):
        record_type("intel").to_json(one_of_each["seizure"])


def test_invalid_json_is_one_line_record_validation_error() -> None:
    with pytest.raises(RecordValidationError) as info:
        record_type("intel").from_json("{not json")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("intel: ")


def test_unknown_record_type_lists_known_names() -> None:
    with pytest.raises(RecordValidationError) as info:
        record_type("firearm")
    for name in RECORD_TYPE_NAMES:
        assert name in str(info.value)


def test_non_canonical_uuid_on_the_wire_is_refused(one_of_each: dict[str, ExchangeRecord]) -> None:
    # A uuid is an Avro string: a peer can write any spelling. One spelling per id (dedup and
    # audit compare ids as strings), so an upper-case id is refused, not silently lowered.
    rtype = record_type("seizure")
    raw = one_of_each["seizure"].model_dump(by_alias=True)
    raw["meta"]["recordId"] = raw["meta"]["recordId"].upper()
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, rtype.current.parsed, raw)
    with pytest.raises(RecordValidationError, match="canonical lower-case form"):
        rtype.decode(buffer.getvalue())
