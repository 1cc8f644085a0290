"""The envelope fuzz target: hostile bytes through decode, verify, open and record decoding.

:func:`fuzz_one` is the entry point libFuzzer (through atheris, :mod:`fuzz.fuzz_envelope`)
calls with each input; ``tests/unit/hostile/test_hostile_fuzz_target.py`` runs it over
:func:`seed_corpus` without atheris. The first byte of an input picks what the rest is:

``0`` (``ENVELOPE``)
    the raw value of a Kafka message. It goes through ``decode_envelope`` and
    ``decode_header`` (only ``AvroFormatError`` may escape; whatever decodes must re-encode to
    the same bytes, the canonical-encoding rule), an auditor's ``verify`` and a recipient's
    ``open`` (only ``IntegrityError``), and the consumer's ``EnvelopeExaminer`` (never raises:
    an accepted record, a refusal with a reason code for quarantine, or "not for us").
``1`` (``SIGNED_HEADER``)
    header bytes that an enrolled but hostile sender signs for real: the checks *after* the
    signature (publishing right, time, handling, recipient, unwrap, decryption) see them.
``2`` (``SEALED_RECORD``)
    record bytes (Avro, claimed to be a ``seizure``) that the hostile sender seals honestly:
    the consumer opens them and must refuse anything that is not a valid seizure with
    ``schema_mismatch`` or ``handling_violation``, never crash.

Anything else escaping is a finding: :func:`fuzz_one` raises it and libFuzzer saves the input.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from typing import Final

from confluent_kafka import Message

from exchange.consumers._examine import Accepted, EnvelopeExaminer, Refusal
from exchange.crypto import BatchSealer, EpochPolicy, Opener, PendingEnvelope, Sealer, SuiteId
from exchange.crypto._avro import AvroFormatError
from exchange.crypto.envelope import (
    BatchSeal,
    RawEnvelope,
    decode_envelope,
    encode_envelope,
    root_message,
    signing_digest,
)
from exchange.crypto.header import decode_header, encode_header
from exchange.crypto.merkle import leaf_hash
from exchange.crypto.suites import suite_info
from exchange.crypto.testing import InMemoryAgency, InMemoryTrust
from exchange.errors import IntegrityError, IntegrityReason, PolicyError
from exchange.metrics import ExchangeMetrics
from exchange.policy import check_addressing, check_release, summary_from_handling
from exchange.records import SeizureRecord, record_type
from exchange.records.sample import generate
from exchange.routing import Reach, exchange_topic

__all__ = ["ENVELOPE", "SEALED_RECORD", "SIGNED_HEADER", "FuzzWorld", "fuzz_one", "seed_corpus"]

ENVELOPE: Final = 0
SIGNED_HEADER: Final = 1
SEALED_RECORD: Final = 2
NOW: Final = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SENDER: Final = "MEX-FGR"
RECIPIENT: Final = "USA-ATF"
TOPIC: Final = exchange_topic(SENDER, Reach.CROSS_BORDER, "seizure")

#: Reasons a refusal of hostile input may carry (every IntegrityReason is a clear reason).
_REASONS: Final = frozenset(r.value for r in IntegrityReason)


class FuzzWorld:
    """Seeded agencies (so the corpus is reproducible), a recipient opener and an examiner."""

    def __init__(self) -> None:
        self.mex = InMemoryAgency.generate(SENDER, seed=b"fuzz")
        self.usa = InMemoryAgency.generate(RECIPIENT, seed=b"fuzz")
        self.hsi = InMemoryAgency.generate("USA-HSI", seed=b"fuzz")  # enrolled, not addressed
        self.trust = InMemoryTrust.of(self.mex, self.usa, self.hsi)
        self.opener = Opener(self.trust, recipient=self.usa, clock=lambda: NOW)
        self.auditor = Opener(self.trust, clock=lambda: NOW)
        self.examiner = EnvelopeExaminer(
            Opener(self.trust, recipient=self.usa, clock=lambda: NOW),
            agency_id=RECIPIENT,
            topic_prefix="",
            metrics=ExchangeMetrics(),
        )
        self.record: SeizureRecord = _seizure()
        self.rtype = record_type("seizure")
        self.handling = summary_from_handling(self.record.handling)
        # One epoch (the wraps are made once): sealing in the loop costs an AES-GCM and a
        # signature, not an HPKE encapsulation per input.
        self.sealer = Sealer(self.mex, self.trust, suite=SuiteId.CLASSIC, clock=lambda: NOW)

    def seal(self, plaintext: bytes, suite: SuiteId = SuiteId.CLASSIC) -> bytes:
        """``plaintext`` sealed MEX-FGR -> USA-ATF as a seizure (classic: the shared epoch)."""
        sealer = self.sealer
        if suite is not SuiteId.CLASSIC:
            sealer = Sealer(
                self.mex, self.trust, suite=suite, clock=lambda: NOW,
                epoch_policy=EpochPolicy(max_messages=1),
            )  # fmt: skip
        return sealer.seal(
            plaintext, recipients=[RECIPIENT], record_type="seizure",
            schema_fingerprint=self.rtype.fingerprint, handling=self.handling, topic=TOPIC,
            now=NOW,
        )  # fmt: skip

    def batch_leaf(self, suite: SuiteId) -> bytes:
        """The middle envelope of a batch of three (a non-empty inclusion path)."""
        plain = self.rtype.encode(self.record)
        with BatchSealer(self.mex, self.trust, suite=suite, max_batch=3, clock=lambda: NOW) as b:
            futures = [self._add(b, plain) for _ in range(3)]
        return futures[1].result()

    def _add(self, batch: BatchSealer, plaintext: bytes) -> PendingEnvelope:
        return batch.add(
            plaintext, recipients=[RECIPIENT], record_type="seizure",
            schema_fingerprint=self.rtype.fingerprint, handling=self.handling, topic=TOPIC,
            now=NOW,
        )  # fmt: skip

    def resign(self, header_bytes: bytes, template: RawEnvelope) -> bytes:
        """A batch-of-one envelope around ``header_bytes``, really signed by MEX-FGR.

        The wraps and ciphertext come from ``template`` (one per recipient the header names
        when it decodes, so the structure checks pass and the later checks run).
        """
        try:
            header = decode_header(header_bytes)
        except AvroFormatError:
            suite, key_id, wraps = SuiteId.CLASSIC, f"{SuiteId.CLASSIC.value}-1", template.wraps
        else:
            suite, key_id = header.suite, header.sender.key_id
            if key_id not in {k.key_id for k in self.mex.public_keys()}:
                key_id = f"{suite.value}-1"
            length = suite_info(suite).wrap_length
            first = template.wraps[0] if template.wraps else b""
            wraps = tuple(
                first if len(first) == length else bytes(length) for _ in header.recipients
            )
        h = suite_info(suite).hash_factory
        digest = signing_digest(suite, header_bytes, wraps, template.ciphertext)
        sigs = self.mex.sign(key_id, root_message(suite, 1, leaf_hash(h, digest)))
        seal = BatchSeal(1, 0, (), sigs)
        return encode_envelope(RawEnvelope(header_bytes, wraps, template.ciphertext, seal))


def _seizure() -> SeizureRecord:
    """The first generated seizure that MEX-FGR may send to, and USA-ATF may read."""
    for record in generate("seizure", count=64, seed=8):
        summary = summary_from_handling(record.handling)
        try:
            check_addressing(summary, sender=SENDER, recipients=[RECIPIENT])
            check_release(summary, RECIPIENT)
        except PolicyError:
            continue
        if isinstance(record, SeizureRecord):
            return record
    raise LookupError("no generated seizure is releasable from MEX-FGR to USA-ATF")


@cache
def world() -> FuzzWorld:
    """The process-wide world (built on first use: key generation is the slow part)."""
    return FuzzWorld()


@cache
def _templates() -> dict[SuiteId, RawEnvelope]:
    w = world()
    plain = w.rtype.encode(w.record)
    return {s: decode_envelope(w.seal(plain, s)) for s in SuiteId}


def seed_corpus() -> Iterator[bytes]:
    """Valid inputs of every mode and suite: envelopes (single, batch leaf, second of an
    epoch), their header bytes, and the record's Avro bytes."""
    w = world()
    plain = w.rtype.encode(w.record)
    for suite in SuiteId:
        yield bytes([ENVELOPE]) + w.seal(plain, suite)
        yield bytes([ENVELOPE]) + w.batch_leaf(suite)
        yield bytes([SIGNED_HEADER]) + _templates()[suite].header_bytes
    yield bytes([ENVELOPE]) + w.seal(plain)  # a later message of the classic epoch
    yield bytes([SEALED_RECORD]) + plain


def _check_canonical(data: bytes) -> None:
    """Decode with the low-level codec; whatever decodes has exactly these bytes."""
    try:
        raw = decode_envelope(data)
    except AvroFormatError:
        return
    if encode_envelope(raw) != data:
        raise AssertionError("an envelope decoded from bytes that are not its canonical encoding")
    try:
        header = decode_header(raw.header_bytes)
    except AvroFormatError:
        return
    if encode_header(header) != raw.header_bytes:
        raise AssertionError("a header decoded from bytes that are not its canonical encoding")


def _examine(value: bytes) -> Accepted | Refusal | None:
    w = world()
    verdict = w.examiner.examine(Message(topic=TOPIC, partition=0, offset=0, value=value))
    if isinstance(verdict, Refusal) and verdict.reason not in _REASONS:
        raise AssertionError(f"refusal with an unknown reason {verdict.reason!r}")
    if isinstance(verdict, Accepted):
        plaintext = w.opener.open(value, now=NOW).plaintext
        fingerprint = verdict.verified.header.schema_fingerprint
        if verdict.record != w.rtype.decode(plaintext, writer_fingerprint=fingerprint):
            raise AssertionError("the examiner accepted a record that open() reads differently")
    return verdict


def _envelope(data: bytes) -> None:
    w = world()
    _check_canonical(data)
    try:
        verified = w.auditor.verify(data, now=NOW)
    except IntegrityError:
        verified = None
    try:
        opened = w.opener.open(data, now=NOW)
    except IntegrityError:
        opened = None
    if opened is not None and verified is None:
        raise AssertionError("open() accepted what verify() refused")
    _examine(data)


def _signed_header(header_bytes: bytes) -> None:
    try:
        suite = decode_header(header_bytes).suite
    except AvroFormatError:
        suite = SuiteId.CLASSIC
    template = _templates()[suite]  # wraps and ciphertext made for a header of this suite
    blob = world().resign(header_bytes, template)
    _envelope(blob)


def _sealed_record(plaintext: bytes) -> None:
    w = world()
    blob = w.seal(plaintext)
    verdict = _examine(blob)
    if verdict is None:
        raise AssertionError("an envelope addressed to USA-ATF was taken as someone else's")
    if isinstance(verdict, Refusal) and verdict.reason not in {
        IntegrityReason.SCHEMA_MISMATCH.value,
        IntegrityReason.HANDLING_VIOLATION.value,
    }:
        raise AssertionError(f"an honestly sealed record was refused as {verdict.reason}")
    if isinstance(verdict, Accepted):
        # Record bytes are not canonical (the model normalizes, e.g. an upper-case UUID, and
        # fastavro reads non-minimal varints): what must hold is that the accepted record is
        # stable, re-encoding it reads back the same record.
        again = w.rtype.decode(w.rtype.encode(verdict.record))
        if again != verdict.record:
            raise AssertionError("an accepted record does not survive its own encoding")


def fuzz_one(data: bytes) -> None:
    """One fuzz input (see the module docstring). Raises only on a finding."""
    if not data:
        return
    mode, body = data[0] % 3, data[1:]
    if mode == ENVELOPE:
        _envelope(body)
    elif mode == SIGNED_HEADER:
        _signed_header(body)
    else:
        _sealed_record(body)
