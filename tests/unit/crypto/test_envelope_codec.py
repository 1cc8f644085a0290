"""The canonical codec agrees with the published Avro schemas, and hostile bytes are refused
cheaply: malformed and oversized input never crashes and never allocates unbounded memory."""

from __future__ import annotations

import dataclasses
import io
import json
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.crypto import Opener, SuiteId
from exchange.crypto._avro import AvroFormatError, Reader, Writer
from exchange.crypto.envelope import MAX_ENVELOPE, decode_envelope, encode_envelope
from exchange.crypto.header import ProducerRef, decode_header, encode_header
from exchange.errors import IntegrityError
from tests.unit.crypto.envelope_world import NOW, World, parts

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas" / "avro" / "envelope"
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _schema(name: str) -> Any:
    return fastavro.parse_schema(json.loads((SCHEMAS / f"{name}.avsc").read_text()))


def _fastavro_read(schema: Any, data: bytes) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(data), schema, None)


def _fastavro_write(schema: Any, record: Any) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, record)
    return buf.getvalue()


def test_header_encoding_is_the_published_schema(envelope: bytes, suite: SuiteId) -> None:
    raw, header = parts(envelope)
    schema = _schema("EnvelopeHeader")
    record = _fastavro_read(schema, raw.header_bytes)
    assert record["suite"] == suite.value
    assert record["messageId"] == header.message_id  # fastavro's uuid logical type
    assert record["recipients"] == [
        {"agencyId": r.agency_id, "keyId": r.key_id} for r in header.recipients
    ]
    assert record["commitment"] == header.commitment
    # ... and fastavro writing the same record yields the exact signed bytes
    assert _fastavro_write(schema, record) == raw.header_bytes


def test_envelope_encoding_is_the_published_schema(envelope: bytes) -> None:
    schema = _schema("Envelope")
    body = envelope[3:]
    record = _fastavro_read(schema, body)
    raw = decode_envelope(envelope)
    assert record["header"] == raw.header_bytes
    assert record["wraps"] == list(raw.wraps)
    assert record["seal"]["signatures"] == list(raw.seal.signatures)
    assert _fastavro_write(schema, record) == body
    assert encode_envelope(raw) == envelope


def test_header_round_trips_exactly(envelope: bytes) -> None:
    raw, header = parts(envelope)
    assert encode_header(header) == raw.header_bytes
    assert decode_header(encode_header(header)) == header


@pytest.mark.parametrize(
    ("data", "oversized"),
    [
        (b"\x80\x00", False),  # non-minimal varint for 0
        (b"\xff" * 11, False),  # varint longer than 10 bytes
        (b"\x01", False),  # negative length (-1)
        (Writer().long(2**62).getvalue(), True),  # hostile length
    ],
)
def test_reader_refuses_non_canonical_and_hostile_lengths(data: bytes, oversized: bool) -> None:
    with pytest.raises(AvroFormatError) as info:
        Reader(data).bytes_(1024)
    assert info.value.oversized is oversized


def test_reader_refuses_multi_block_and_negative_arrays() -> None:
    two_blocks = Writer().long(1).string("a").long(1).string("b").long(0).getvalue()
    r = Reader(two_blocks)
    n = r.array_count(8)
    r.string(8)
    with pytest.raises(AvroFormatError, match="more than one array block"):
        r.array_end(n)
    with pytest.raises(AvroFormatError, match="negative block count"):
        Reader(Writer().long(-1).long(3).getvalue()).array_count(8)
    with pytest.raises(AvroFormatError) as info:
        Reader(Writer().long(2**62).getvalue()).array_count(64)
    assert info.value.oversized


def _peak_kib(fn: Any) -> float:
    tracemalloc.start()
    try:
        fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak / 1024


def test_hostile_counts_are_refused_without_allocating(world: World) -> None:
    opener = Opener(world.trust, clock=lambda: NOW)
    hostile = [
        b"XE\x01" + Writer().long(2**62).getvalue(),  # header length
        b"XE\x01" + Writer().bytes_(b"h").long(2**62).getvalue(),  # wraps count
        b"XE\x01" + Writer().bytes_(b"h").long(0).long(2**40).getvalue(),  # ciphertext length
    ]
    for blob in hostile:

        def attempt(blob: bytes = blob) -> None:
            with pytest.raises(IntegrityError):
                opener.verify(blob)

        assert _peak_kib(attempt) < 64


def test_maximum_size_envelope_is_decoded_within_bounds(world: World) -> None:
    # A 1 MiB envelope made of the longest allowed fields: rejected, and memory stays ~2x input.
    big = (
        b"XE\x01"
        + Writer()
        .bytes_(b"\x00" * (64 << 10))
        .long(0)
        .bytes_(b"\x00" * (MAX_ENVELOPE - (64 << 10) - 64))
        .getvalue()
    )
    opener = Opener(world.trust, clock=lambda: NOW)

    def attempt() -> None:
        with pytest.raises(IntegrityError):
            opener.verify(big)

    assert _peak_kib(attempt) < 4 * 1024


@FAST
@given(body=st.binary(max_size=4096))
def test_random_bytes_never_crash(world: World, body: bytes) -> None:
    opener = Opener(world.trust, clock=lambda: NOW)

    def attempt() -> None:
        for blob in (body, b"XE\x01" + body):
            with pytest.raises(IntegrityError):
                opener.verify(blob)

    assert _peak_kib(attempt) < 256  # bounded by the input, never by a claimed length


@FAST
@given(data=st.data())
def test_mutated_envelopes_never_crash_and_are_rejected(
    world: World, envelopes: dict[Any, bytes], data: st.DataObject
) -> None:
    envelope = data.draw(st.sampled_from(sorted(envelopes.values())))
    start = data.draw(st.integers(0, len(envelope)))
    end = data.draw(st.integers(start, min(len(envelope), start + 64)))
    insert = data.draw(st.binary(max_size=64))
    mutated = envelope[:start] + insert + envelope[end:]
    opener = Opener(world.trust, recipient=world.usa, clock=lambda: NOW)
    if mutated == envelope:
        assert opener.open(mutated).header.sender.agency_id == "MEX-FGR"
        return
    with pytest.raises(IntegrityError):
        opener.open(mutated)


@FAST
@given(
    tlp=st.sampled_from(["CLEAR", "GREEN", "AMBER", "AMBER_STRICT", "RED"]),
    topic=st.from_regex(r"[A-Za-z0-9._-]{1,249}", fullmatch=True),
    counter=st.integers(0, 2**32 - 1),
    seq=st.integers(0, 2**63 - 1),
)
def test_any_valid_header_round_trips_through_fastavro(
    envelopes: dict[Any, bytes], tlp: str, topic: str, counter: int, seq: int
) -> None:
    _, header = parts(envelopes[(SuiteId.CLASSIC, next(iter(k[1] for k in envelopes)))])
    h = dataclasses.replace(
        header,
        topic=topic,
        nonce_counter=counter,
        producer=ProducerRef("p", 1, seq),
        handling=dataclasses.replace(header.handling, tlp=tlp, releasable_to_agencies=("USA-ATF",)),
        message_id=uuid.uuid4(),
    )
    encoded = encode_header(h)
    assert decode_header(encoded) == h
    record = _fastavro_read(_schema("EnvelopeHeader"), encoded)
    assert record["topic"] == topic
    assert record["handling"]["releasableToAgencies"] == ["USA-ATF"]
    assert _fastavro_write(_schema("EnvelopeHeader"), record) == encoded
