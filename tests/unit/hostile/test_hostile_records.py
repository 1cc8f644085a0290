"""The Avro record decoder (records inside envelopes) under hostile input, and the consumer's
quarantine reasons for what it refuses. ``RecordType.decode`` may raise only
``RecordValidationError``; the examiner never raises and names a specific reason."""

from __future__ import annotations

from functools import cache
from itertools import permutations

import pytest
from confluent_kafka import Message
from hypothesis import given
from hypothesis import strategies as st

from exchange.consumers._examine import MAX_ENVELOPE_BYTES, Accepted, Refusal
from exchange.errors import IntegrityReason, RecordValidationError
from exchange.records import RECORD_TYPE_NAMES, ExchangeRecord, record_type
from exchange.records.sample import generate
from fuzz.envelope_target import TOPIC, FuzzWorld, world
from tests.unit.hostile.hostile_support import hostile, peak_kib, varint

R = IntegrityReason


@cache
def encoded(name: str) -> bytes:
    return record_type(name).encode(generate(name, count=1, seed=21)[0])


# --- the decoder ----------------------------------------------------------------------------


@pytest.mark.parametrize(("writer", "reader"), list(permutations(RECORD_TYPE_NAMES, 2)))
def test_another_types_bytes_are_refused(writer: str, reader: str) -> None:
    with pytest.raises(RecordValidationError) as info:
        record_type(reader).decode(encoded(writer))
    assert info.value.record_type == reader
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", RECORD_TYPE_NAMES)
def test_truncation_is_refused(name: str) -> None:
    data = encoded(name)
    rtype = record_type(name)
    # Every length of the first and last 256 bytes, ~250 cuts in between (each cut costs a
    # full fastavro read, and records run to several KiB).
    cuts = {*range(min(256, len(data))), *range(max(0, len(data) - 256), len(data))}
    cuts |= set(range(0, len(data), max(1, len(data) // 250)))
    for cut in sorted(cuts):
        with pytest.raises(RecordValidationError):
            rtype.decode(data[:cut])


@pytest.mark.parametrize("name", RECORD_TYPE_NAMES)
def test_a_5_byte_record_declaring_a_2_gib_string_costs_nothing(name: str) -> None:
    hostile_record = varint(2**31)  # meta.recordId's length prefix: 2 GiB
    assert len(hostile_record) == 5

    def attempt() -> None:
        with pytest.raises(RecordValidationError):
            record_type(name).decode(hostile_record)

    assert peak_kib(attempt) < 256


def _varint_end(data: bytes, pos: int) -> int:
    end = pos
    while end < len(data) and data[end] & 0x80:
        end += 1
    return min(end + 1, len(data))


@hostile(200)
@given(
    name=st.sampled_from(RECORD_TYPE_NAMES),
    pos=st.integers(0),
    value=st.sampled_from([2**31, 2**40, 2**62, 2**63 - 1, -(2**63), -1, -(2**31)]),
)
def test_a_huge_length_or_count_anywhere_is_refused_cheaply(
    name: str, pos: int, value: int
) -> None:
    data = encoded(name)
    start = pos % len(data)
    hostile_data = data[:start] + varint(value) + data[_varint_end(data, start) :]
    rtype = record_type(name)
    outcome: list[ExchangeRecord | None] = []

    def attempt() -> None:
        try:
            outcome.append(rtype.decode(hostile_data))
        except RecordValidationError:
            outcome.append(None)

    # Bounded by the input (a few KiB) and fastavro's own tables, never by a declared length.
    assert peak_kib(attempt) < 2048
    if outcome[0] is not None:  # a huge long where a long belongs (a time, an offset...)
        assert rtype.decode(rtype.encode(outcome[0])) == outcome[0]


@hostile(200)
@given(name=st.sampled_from(RECORD_TYPE_NAMES), garbage=st.binary(max_size=4096))
def test_garbage_after_a_valid_prefix_is_refused(name: str, garbage: bytes) -> None:
    data = encoded(name)
    with pytest.raises(RecordValidationError):
        record_type(name).decode(data + b"\x00" + garbage)  # at least one trailing byte


# --- the consumer: every refusal is a specific quarantine reason ----------------------------


def _examine(w: FuzzWorld, value: bytes, topic: str = TOPIC) -> Accepted | Refusal | None:
    return w.examiner.examine(Message(topic=topic, partition=0, offset=1, value=value))


def _refusal(verdict: Accepted | Refusal | None) -> Refusal:
    assert isinstance(verdict, Refusal), verdict
    return verdict


def test_the_examiner_accepts_the_honest_record() -> None:
    w = world()
    verdict = _examine(w, w.seal(w.rtype.encode(w.record)))
    assert isinstance(verdict, Accepted)
    assert verdict.record == w.record


@pytest.mark.parametrize(
    "plaintext",
    [
        b"",
        b"\x00",
        varint(2**31),  # a 2 GiB record id
        *(encoded(n) for n in RECORD_TYPE_NAMES if n != "seizure"),  # another type's bytes
    ],
    ids=["empty", "zero", "2GiB", *(n for n in RECORD_TYPE_NAMES if n != "seizure")],
)
def test_undecodable_plaintext_is_quarantined_as_schema_mismatch(plaintext: bytes) -> None:
    w = world()
    refusal = _refusal(_examine(w, w.seal(plaintext)))
    assert refusal.reason == R.SCHEMA_MISMATCH.value
    assert refusal.verified is not None  # authentic: the sender is named in quarantine
    assert refusal.detail is None  # the decoder's message may quote content: not repeated


@hostile(60)
@given(plaintext=st.binary(max_size=2048))
def test_random_sealed_plaintext_is_quarantined_as_schema_mismatch(plaintext: bytes) -> None:
    w = world()
    verdict = _examine(w, w.seal(plaintext))
    assert _refusal(verdict).reason == R.SCHEMA_MISMATCH.value


def test_a_record_whose_handling_differs_from_the_signed_summary_is_refused() -> None:
    w = world()
    wider = w.record.handling.model_copy(update={"releasable_to": ["CAN", "MEX", "USA"]})
    record = w.record.model_copy(update={"handling": wider})
    refusal = _refusal(_examine(w, w.seal(w.rtype.encode(record))))
    assert refusal.reason == R.HANDLING_VIOLATION.value
    assert refusal.detail == "the record's handling differs from the signed handling summary"


def test_envelope_level_refusals_have_their_own_reasons() -> None:
    w = world()
    good = w.seal(w.rtype.encode(w.record))
    cases = {
        R.OVERSIZED: _examine(w, bytes(MAX_ENVELOPE_BYTES + 1)),
        R.MALFORMED: _examine(w, good[:-1]),
        R.UNKNOWN_VERSION: _examine(w, b"XE\x02" + good[3:]),
        R.BAD_SIGNATURE: _examine(w, good[:-10] + bytes([good[-10] ^ 1]) + good[-9:]),
        R.BINDING_MISMATCH: _examine(w, good, topic="xchg.MEX-FGR.domestic.seizure"),
    }
    for reason, verdict in cases.items():
        assert _refusal(verdict).reason == reason.value
    assert _refusal(cases[R.OVERSIZED]).detail == f"{MAX_ENVELOPE_BYTES + 1} bytes"


def test_a_fingerprint_of_another_type_is_schema_mismatch() -> None:
    w = world()
    blob = w.sealer.seal(
        encoded("intel"), recipients=["USA-ATF"], record_type="seizure",
        schema_fingerprint=record_type("intel").fingerprint, handling=w.handling, topic=TOPIC,
    )  # fmt: skip
    assert _refusal(_examine(w, blob)).reason == R.SCHEMA_MISMATCH.value
