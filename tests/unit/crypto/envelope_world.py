"""Shared world for envelope tests: enrolled agencies, a fixed clock, envelope factories
and a forger that re-assembles (and re-signs) envelopes the way an attacker would."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from exchange.crypto import BatchSealer, EpochPolicy, HandlingSummary, Sealer, SuiteId
from exchange.crypto.envelope import (
    BatchSeal,
    RawEnvelope,
    decode_envelope,
    encode_envelope,
    root_message,
    signing_digest,
)
from exchange.crypto.header import EnvelopeHeader, decode_header, encode_header
from exchange.crypto.merkle import leaf_hash
from exchange.crypto.suites import suite_info
from exchange.crypto.testing import InMemoryAgency, InMemoryTrust

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FINGERPRINT = bytes(range(32))
PLAINTEXT = b"\x02\x48seizure record avro bytes \x00\x01\x02"
HANDLING = HandlingSummary(
    tlp="AMBER",
    releasable_to=("MEX", "USA"),
    originator="MEX-FGR",
    caveats=("LAW_ENFORCEMENT_SENSITIVE",),
)
TOPIC = "xchg.MEX-FGR.crossborder.seizure"


class Mode(StrEnum):
    """How the envelope under test was signed."""

    SINGLE = "single"  # seal(): fresh DEK, batch of one
    BATCH = "batch"  # middle leaf of a batch of three, one signature
    EPOCH = "epoch"  # second message of a DEK epoch (counter 1, wraps reused)


def message(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments of a seizure from MEX-FGR to USA-ATF, with ``overrides``."""
    return {
        "recipients": ["USA-ATF"],
        "record_type": "seizure",
        "schema_fingerprint": FINGERPRINT,
        "handling": HANDLING,
        "topic": TOPIC,
        **overrides,
    }


class World:
    """Agencies of both countries plus one enrolled agency that plays the attacker."""

    def __init__(self) -> None:
        self.mex = InMemoryAgency.generate("MEX-FGR")
        self.usa = InMemoryAgency.generate("USA-ATF")
        self.cbp = InMemoryAgency.generate("USA-CBP")
        self.hsi = InMemoryAgency.generate("USA-HSI")  # enrolled, but not addressed: the attacker
        self.trust = InMemoryTrust.of(self.mex, self.usa, self.cbp, self.hsi)

    def sealer(self, suite: SuiteId, **kw: Any) -> Sealer:
        return Sealer(
            self.mex, self.trust, suite=suite, clock=lambda: NOW, **kw
        )  # test pass-through

    def make(
        self,
        suite: SuiteId,
        mode: Mode = Mode.SINGLE,
        *,
        plaintext: bytes = PLAINTEXT,
        recipients: tuple[str, ...] = ("USA-ATF", "USA-CBP"),
        record_type: str = "seizure",
        now: datetime = NOW,
    ) -> bytes:
        kw = message(recipients=recipients, record_type=record_type, now=now)
        if mode is Mode.SINGLE:
            sealer = self.sealer(suite, epoch_policy=EpochPolicy(max_messages=1))
            return sealer.seal(plaintext, **kw)
        if mode is Mode.EPOCH:
            sealer = self.sealer(suite)
            sealer.seal(b"first message of the epoch", **kw)
            return sealer.seal(plaintext, **kw)
        with BatchSealer(self.mex, self.trust, suite=suite, max_batch=3, clock=lambda: NOW) as b:
            futures = [b.add(p, **kw) for p in (b"leaf zero", plaintext, b"leaf two")]
        return futures[1].result()


def parts(envelope: bytes) -> tuple[RawEnvelope, EnvelopeHeader]:
    raw = decode_envelope(envelope)
    return raw, decode_header(raw.header_bytes)


class Signer(Protocol):
    def sign(self, key_id: str, message: bytes) -> tuple[bytes, ...]: ...


def resign(
    signer: Signer,
    key_id: str,
    suite: SuiteId,
    body: tuple[bytes, tuple[bytes, ...], bytes],
) -> bytes:
    """Assemble a batch-of-one envelope from (header, wraps, ciphertext), signed by ``signer``."""
    header_bytes, wraps, ciphertext = body
    h = suite_info(suite).hash_factory
    root = leaf_hash(h, signing_digest(suite, header_bytes, wraps, ciphertext))
    sigs = signer.sign(key_id, root_message(suite, 1, root))
    return encode_envelope(RawEnvelope(header_bytes, wraps, ciphertext, BatchSeal(1, 0, (), sigs)))


def with_header(envelope: bytes, **changes: Any) -> bytes:
    """The envelope with header fields replaced and the rest (including signatures) kept."""
    raw, header = parts(envelope)
    new = encode_header(dataclasses.replace(header, **changes))
    return encode_envelope(dataclasses.replace(raw, header_bytes=new))


LATER = NOW + timedelta(minutes=1)
