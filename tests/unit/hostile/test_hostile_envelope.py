"""The envelope decoder under hostile input (docs/envelope.md, "Canonical encoding" and
"Bounds"): truncation at every length, bit flips, inflated length prefixes, nesting, random
and mutated bytes. The public surface is what is tested — ``decode_envelope`` and
``decode_header`` may raise only ``AvroFormatError``, ``Opener.verify``/``open`` only
``IntegrityError`` with a reason — so a rewrite of the decoder keeps these guarantees."""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.crypto import DerivedFrom, KeyRef, Opener, ProducerRef, SuiteId
from exchange.crypto._avro import AvroFormatError, Writer
from exchange.crypto.envelope import (
    MAX_ENVELOPE,
    RawEnvelope,
    decode_envelope,
    encode_envelope,
)
from exchange.crypto.header import EnvelopeHeader, decode_header, encode_header
from exchange.errors import IntegrityError, IntegrityReason
from exchange.policy import CAVEATS, TLP_LEVELS, HandlingSummary
from tests.unit.crypto.envelope_world import NOW, Mode, World, parts
from tests.unit.hostile.hostile_support import hostile, peak_kib, varint

R = IntegrityReason
#: What a reader may answer before the signature: the decoder's reasons.
DECODER_REASONS: Final = {R.MALFORMED, R.OVERSIZED, R.UNKNOWN_VERSION, R.UNKNOWN_SUITE}
Envelopes = dict[tuple[SuiteId, Mode], bytes]


def _reason(opener: Opener, blob: bytes, *, open_: bool = False) -> IntegrityReason:
    check = opener.open if open_ else opener.verify
    with pytest.raises(IntegrityError) as info:
        check(blob)
    return info.value.reason


# --- truncation, bit flips ------------------------------------------------------------------


def test_every_truncation_of_every_envelope_is_malformed(
    world: World, envelopes: Envelopes
) -> None:
    opener = Opener(world.trust, clock=lambda: NOW)
    # Every suite, and a batch leaf (the only one with an inclusion path).
    chosen = [envelopes[(s, Mode.SINGLE)] for s in SuiteId] + [
        envelopes[(SuiteId.CNSA, Mode.BATCH)]
    ]
    for envelope in chosen:
        for cut in range(len(envelope)):
            assert _reason(opener, envelope[:cut]) is R.MALFORMED, cut
            with pytest.raises(AvroFormatError):
                decode_envelope(envelope[:cut])


def test_every_truncation_of_every_header_is_refused(envelopes: Envelopes) -> None:
    for envelope in envelopes.values():
        header = decode_envelope(envelope).header_bytes
        for cut in range(len(header)):
            with pytest.raises(AvroFormatError):
                decode_header(header[:cut])


@hostile(120)
@given(data=st.data())
def test_any_flipped_bit_is_rejected(
    world: World, envelopes: Envelopes, data: st.DataObject
) -> None:
    key = data.draw(st.sampled_from(sorted(envelopes)))
    envelope = bytearray(envelopes[key])
    bit = data.draw(st.integers(0, len(envelope) * 8 - 1))
    envelope[bit // 8] ^= 1 << (bit % 8)
    opener = Opener(world.trust, recipient=world.usa, clock=lambda: NOW)
    # Every byte is covered by the signature (directly or through a digest).
    assert _reason(opener, bytes(envelope), open_=True) in set(R)


# --- inflated lengths -----------------------------------------------------------------------

_SLOTS = ("header", "wraps", "wrap", "ciphertext", "batch", "leaf", "path", "signatures", "sig")


def _lying(raw: RawEnvelope, slot: str, value: int) -> bytes:
    """``raw`` encoded canonically except that the varint of ``slot`` says ``value``."""
    w = Writer()

    def n(name: str, truth: int) -> None:
        w.long(value if name == slot else truth)

    def blob(name: str, b: bytes) -> None:
        n(name, len(b))
        w.fixed(b, len(b))

    def array(name: str, item: str, items: tuple[bytes, ...]) -> None:
        n(name, len(items))
        for x in items:
            blob(item, x)
        w.long(0) if items else None

    blob("header", raw.header_bytes)
    array("wraps", "wrap", raw.wraps)
    blob("ciphertext", raw.ciphertext)
    n("batch", raw.seal.batch_size)
    n("leaf", raw.seal.leaf_index)
    array("path", "path-item", raw.seal.path)
    array("signatures", "sig", raw.seal.signatures)
    return b"XE\x01" + w.getvalue()


@pytest.mark.parametrize("slot", _SLOTS)
@pytest.mark.parametrize("value", [2**31, 2**32 + 5, 2**62, 2**63 - 1, -1, -(2**63)])
def test_inflated_length_prefixes_are_refused_before_reading(
    world: World, envelopes: Envelopes, slot: str, value: int
) -> None:
    envelope = envelopes[(SuiteId.PQ_HYBRID, Mode.BATCH)]  # every slot is present
    raw = decode_envelope(envelope)
    assert _lying(raw, slot, len(raw.header_bytes)) if slot == "header" else True
    blob = _lying(raw, slot, value)
    opener = Opener(world.trust, clock=lambda: NOW)
    got: list[IntegrityReason] = []

    def attempt() -> None:
        got.append(_reason(opener, blob))

    assert peak_kib(attempt) < 64 + 3 * len(blob) / 1024  # the input's copies, nothing more
    counts_and_lengths = slot not in ("batch", "leaf")
    expected = R.OVERSIZED if value > 0 and counts_and_lengths else R.MALFORMED
    assert got == [expected]


def test_the_lying_encoder_tells_the_truth_when_asked(envelopes: Envelopes) -> None:
    for envelope in envelopes.values():
        raw = decode_envelope(envelope)
        assert _lying(raw, "none", 0) == envelope


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (b"XE\x01" + varint(2**31), R.OVERSIZED),  # 5-byte prefix: a 2 GiB header
        (b"XE\x01" + varint(1) + b"h" + varint(2**31), R.OVERSIZED),  # 2 Gi wraps
        (b"XE\x01" + varint(1) + b"h" + varint(0) + varint(2**31), R.OVERSIZED),  # 2 GiB ct
        (b"XE\x01" + b"\xff" * 9 + b"\x01", R.MALFORMED),  # varint beyond 64 bits
        (b"XE\x01" + b"\x80" * 10, R.MALFORMED),  # varint without an end
        (b"XE\x02", R.UNKNOWN_VERSION),
        (b"XF\x01", R.MALFORMED),
        (b"", R.MALFORMED),
    ],
)
def test_tiny_hostile_inputs_cost_nothing(world: World, blob: bytes, reason: R) -> None:
    opener = Opener(world.trust, clock=lambda: NOW)
    got: list[IntegrityReason] = []
    assert peak_kib(lambda: got.append(_reason(opener, blob))) < 16
    assert got == [reason]


def test_a_header_declaring_2_gib_strings_costs_nothing() -> None:
    for hostile_header in (
        varint(1) + varint(2**31),  # version 1, then the suite string claims 2 GiB
        varint(1) + varint(7) + b"classic" + varint(2**31),  # the message id claims 2 GiB
    ):

        def attempt(h: bytes = hostile_header) -> None:
            with pytest.raises(AvroFormatError) as info:
                decode_header(h)
            assert info.value.oversized

        assert peak_kib(attempt) < 16


# --- nesting, size --------------------------------------------------------------------------


def test_envelopes_nested_to_the_size_bound_are_refused_quickly(
    world: World, envelopes: Envelopes
) -> None:
    raw = decode_envelope(envelopes[(SuiteId.CLASSIC, Mode.SINGLE)])
    inner = encode_envelope(raw)
    depth = 0
    while True:  # envelope in the ciphertext of an envelope ... up to the 1 MiB bound
        outer = encode_envelope(dataclasses.replace(raw, ciphertext=inner))
        if len(outer) > MAX_ENVELOPE:
            break
        inner, depth = outer, depth + 1
    assert depth > 100
    as_header = encode_envelope(dataclasses.replace(raw, header_bytes=inner[: 64 << 10]))
    opener = Opener(world.trust, recipient=world.usa, clock=lambda: NOW)
    began = time.perf_counter()
    # The outer header and signature are the original's: the inner bytes change h_ct.
    assert _reason(opener, inner, open_=True) is R.BAD_SIGNATURE
    # An envelope where the header belongs: its "X" is read as header version 44.
    assert _reason(opener, as_header, open_=True) is R.UNKNOWN_VERSION
    assert len(outer) > MAX_ENVELOPE
    assert _reason(opener, outer) is R.OVERSIZED
    assert time.perf_counter() - began < 5  # a few ms normally; generous for a loaded CI


# --- random and mutated bytes: typed errors, canonical when accepted -----------------------


@hostile(150)
@given(data=st.data())
def test_mutated_envelopes_decode_only_canonically(
    envelopes: Envelopes, data: st.DataObject
) -> None:
    envelope = data.draw(st.sampled_from(sorted(envelopes.values())))
    start = data.draw(st.integers(0, len(envelope)))
    end = data.draw(st.integers(start, min(len(envelope), start + 32)))
    mutated = envelope[:start] + data.draw(st.binary(max_size=32)) + envelope[end:]
    try:
        raw = decode_envelope(mutated)
    except AvroFormatError:
        return
    assert encode_envelope(raw) == mutated  # one envelope, one byte string


@hostile(200)
@given(data=st.data())
def test_mutated_headers_decode_only_canonically(envelopes: Envelopes, data: st.DataObject) -> None:
    header = decode_envelope(data.draw(st.sampled_from(sorted(envelopes.values())))).header_bytes
    start = data.draw(st.integers(0, len(header)))
    end = data.draw(st.integers(start, min(len(header), start + 8)))
    mutated = header[:start] + data.draw(st.binary(max_size=8)) + header[end:]
    try:
        decoded = decode_header(mutated)
    except AvroFormatError:
        return
    assert encode_header(decoded) == mutated


@hostile(150)
@given(body=st.binary(max_size=2048))
def test_random_header_bytes_raise_only_the_format_error(body: bytes) -> None:
    for data in (body, varint(1) + varint(7) + b"classic" + body):
        try:
            decoded = decode_header(data)
        except AvroFormatError:
            continue
        assert encode_header(decoded) == data


# --- valid input round-trips ----------------------------------------------------------------

_ID = st.from_regex(r"[\x21-\x7e]{1,128}", fullmatch=True)
_AGENCY = st.from_regex(r"(MEX|USA|CAN)-[A-Z][A-Z0-9]{1,15}", fullmatch=True)
_LONG = st.integers(0, 2**63 - 1)
_DIGEST = st.binary(min_size=32, max_size=32) | st.binary(min_size=48, max_size=48)
_PARENT = st.builds(
    DerivedFrom, st.integers(0, 2**128 - 1).map(lambda i: uuid.UUID(int=i)), _DIGEST
)


@st.composite
def headers(draw: st.DrawFn) -> EnvelopeHeader:
    suite = draw(st.sampled_from(list(SuiteId)))
    size = 48 if suite is SuiteId.CNSA else 32
    originator = draw(_AGENCY)
    created = draw(st.integers(0, 2**61))
    recipients = draw(st.lists(_AGENCY, min_size=1, max_size=64, unique=True))
    return EnvelopeHeader(
        version=1,
        suite=suite,
        message_id=uuid.UUID(int=draw(st.integers(0, 2**128 - 1))),
        sender=KeyRef(draw(_ID), draw(_ID)),
        producer=ProducerRef(draw(_ID), draw(_LONG), draw(_LONG)),
        created_us=created,
        expires_us=created + draw(st.integers(1, 366 * 86_400 * 1_000_000)),
        topic=draw(st.from_regex(r"[A-Za-z0-9._-]{1,249}", fullmatch=True)),
        record_type=draw(_ID),
        schema_fingerprint=draw(st.binary(min_size=32, max_size=32)),
        handling=HandlingSummary(
            tlp=draw(st.sampled_from(TLP_LEVELS)),
            releasable_to=tuple(
                {originator[:3], *draw(st.lists(st.sampled_from(["CAN", "MEX", "USA"])))}
            ),
            originator=originator,
            releasable_to_agencies=draw(st.none() | st.lists(_AGENCY, max_size=64).map(tuple)),
            caveats=tuple(draw(st.sets(st.sampled_from(sorted(CAVEATS))))),
        ),
        provenance=tuple(draw(st.lists(_PARENT, max_size=64))),
        recipients=tuple(sorted(KeyRef(a, draw(_ID)) for a in recipients)),
        dek_epoch=draw(st.binary(min_size=16, max_size=16)),
        nonce_counter=draw(st.integers(0, 2**32 - 1)),
        commitment=draw(st.binary(min_size=size, max_size=size)),
    )


@hostile(25)
@given(header=headers())
def test_every_valid_header_round_trips(header: EnvelopeHeader) -> None:
    encoded = encode_header(header)
    assert decode_header(encoded) == header
    for cut in (0, len(encoded) // 2, len(encoded) - 1):  # and its truncations never decode
        with pytest.raises(AvroFormatError):
            decode_header(encoded[:cut])


@hostile(30, deadline_s=5)
@given(
    plaintext=st.binary(max_size=8192),
    suite=st.sampled_from(list(SuiteId)),
    recipients=st.sets(st.sampled_from(["USA-ATF", "USA-CBP"]), min_size=1),
)
def test_valid_envelopes_round_trip(
    world: World, plaintext: bytes, suite: SuiteId, recipients: set[str]
) -> None:
    blob = world.make(suite, plaintext=plaintext, recipients=tuple(sorted(recipients)))
    raw, header = parts(blob)
    assert encode_envelope(raw) == blob
    assert [r.agency_id for r in header.recipients] == sorted(recipients)
    for name, agency in (("USA-ATF", world.usa), ("USA-CBP", world.cbp)):
        opener = Opener(world.trust, recipient=agency, clock=lambda: NOW)
        if name in recipients:
            assert opener.open(blob).plaintext == plaintext
        else:
            assert _reason(opener, blob, open_=True) is R.NOT_A_RECIPIENT
