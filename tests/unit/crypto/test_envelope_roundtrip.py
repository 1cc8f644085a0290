"""Two agencies of different countries exchange envelopes with every suite and signing mode."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from exchange.crypto import AgencyKey, BatchSealer, EpochPolicy, Opener, SuiteId, open, seal, verify
from exchange.crypto.envelope import commitment
from exchange.crypto.header import KeyRef
from exchange.crypto.testing import InMemoryAgency, InMemoryTrust
from exchange.errors import ConfigurationError
from tests.unit.crypto.envelope_world import (
    FINGERPRINT,
    HANDLING,
    NOW,
    PLAINTEXT,
    TOPIC,
    Mode,
    World,
    message,
    parts,
)


def test_sealed_envelope_opens_for_every_recipient(world: World, envelope: bytes) -> None:
    for agency in (world.usa, world.cbp):
        opened = open(envelope, recipient=agency, trust=world.trust, now=NOW)
        assert opened.plaintext == PLAINTEXT
        assert opened.header.sender.agency_id == "MEX-FGR"


def test_verify_returns_the_signed_header_without_a_private_key(
    world: World, envelope: bytes, suite: SuiteId
) -> None:
    v = verify(envelope, trust=world.trust, now=NOW)
    h = v.header
    assert h.suite is suite
    assert h.record_type == "seizure"
    assert h.topic == TOPIC
    assert h.schema_fingerprint == FINGERPRINT
    assert h.handling == HANDLING
    assert [r.agency_id for r in h.recipients] == ["USA-ATF", "USA-CBP"]
    assert h.created_at == NOW
    assert h.expires_at == NOW + timedelta(days=7)
    assert v.sender_key.suite is suite
    assert len(v.signing_digest) == (48 if suite is SuiteId.CNSA else 32)


def test_salt_and_plaintext_prove_the_content_to_a_third_party(
    world: World, envelope: bytes, suite: SuiteId
) -> None:
    opened = open(envelope, recipient=world.usa, trust=world.trust, now=NOW)
    # The auditor holds only the verified header; the recipient reveals plaintext + salt.
    header = verify(envelope, trust=world.trust, now=NOW).header
    assert commitment(suite, opened.salt, opened.plaintext) == header.commitment
    assert commitment(suite, opened.salt, opened.plaintext + b"x") != header.commitment


def test_signing_modes_produce_their_structure(envelope: bytes, mode: Mode) -> None:
    raw, header = parts(envelope)
    if mode is Mode.BATCH:
        assert (raw.seal.batch_size, raw.seal.leaf_index, len(raw.seal.path)) == (3, 1, 2)
    else:
        assert (raw.seal.batch_size, raw.seal.leaf_index, raw.seal.path) == (1, 0, ())
    assert header.nonce_counter == (1 if mode is Mode.EPOCH else 0 if mode is Mode.SINGLE else 1)


def test_epoch_reuses_wraps_and_counts_nonces(world: World, suite: SuiteId) -> None:
    sealer = world.sealer(suite, epoch_policy=EpochPolicy(max_messages=3))
    kw = message()
    blobs = [sealer.seal(b"m%d" % i, **kw) for i in range(4)]
    decoded = [parts(b) for b in blobs]
    assert [h.nonce_counter for _, h in decoded] == [0, 1, 2, 0]
    assert [h.producer.sequence for _, h in decoded] == [0, 1, 2, 3]
    assert decoded[0][0].wraps == decoded[2][0].wraps
    assert decoded[0][1].dek_epoch == decoded[2][1].dek_epoch != decoded[3][1].dek_epoch
    opener = Opener(world.trust, recipient=world.usa, clock=lambda: NOW)
    assert [opener.open(b).plaintext for b in blobs] == [b"m0", b"m1", b"m2", b"m3"]
    assert (opener.deks.misses, opener.deks.hits) == (2, 2)


def test_epoch_ends_after_its_age(world: World) -> None:
    sealer = world.sealer(SuiteId.CLASSIC, epoch_policy=EpochPolicy(max_age=timedelta(seconds=5)))
    kw = message()
    a = parts(sealer.seal(b"a", now=NOW, **kw))[1]
    b = parts(sealer.seal(b"b", now=NOW + timedelta(seconds=4), **kw))[1]
    c = parts(sealer.seal(b"c", now=NOW + timedelta(seconds=6), **kw))[1]
    assert a.dek_epoch == b.dek_epoch != c.dek_epoch


class CountingSigner:
    """A KeyProvider that delegates to an agency and counts signing operations."""

    def __init__(self, inner: InMemoryAgency) -> None:
        self.inner = inner
        self.calls = 0

    @property
    def agency_id(self) -> str:
        return self.inner.agency_id

    def current_key(self, suite: SuiteId, *, at: datetime) -> AgencyKey:
        return self.inner.current_key(suite, at=at)

    def sign(self, key_id: str, message: bytes) -> tuple[bytes, ...]:
        self.calls += 1
        return self.inner.sign(key_id, message)

    def hpke_open(self, key_id: str, sealed: bytes, *, info: bytes) -> bytes:
        return self.inner.hpke_open(key_id, sealed, info=info)


def test_batch_is_signed_once_and_every_leaf_verifies(world: World, suite: SuiteId) -> None:
    signer = CountingSigner(world.mex)
    kw = message()
    with BatchSealer(signer, world.trust, suite=suite, max_batch=64, clock=lambda: NOW) as b:
        futures = [b.add(b"%d" % i, **kw) for i in range(13)]
        assert not futures[0].done()
    assert signer.calls == 1
    opener = Opener(world.trust, recipient=world.usa, clock=lambda: NOW)
    assert [opener.open(f.result()).plaintext for f in futures] == [b"%d" % i for i in range(13)]
    roots = {opener.verify(f.result()).batch_root for f in futures}
    assert len(roots) == 1


def test_batch_flushes_when_full_and_after_linger(world: World) -> None:
    kw = message()
    b = BatchSealer(world.mex, world.trust, suite=SuiteId.CLASSIC, max_batch=2,
                    linger=timedelta(seconds=1), clock=lambda: NOW)  # fmt: skip
    f1 = b.add(b"1", now=NOW, **kw)
    f2 = b.add(b"2", now=NOW, **kw)
    assert f1.done()
    assert f2.done()
    assert b.batches_signed == 1
    f3 = b.add(b"3", now=NOW, **kw)
    f4 = b.add(b"4", now=NOW + timedelta(seconds=2), **kw)
    assert f3.done()
    assert not f4.done()
    with pytest.raises(RuntimeError, match="not been flushed"):
        f4.result()
    assert b.flush() == 1
    assert f4.done()
    with b:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        b.add(b"5", **kw)


def test_opener_caches_roots_and_deks_within_bounds(world: World) -> None:
    kw = message()
    opener = Opener(world.trust, recipient=world.usa, root_cache_size=2, dek_cache_size=1,
                    clock=lambda: NOW)  # fmt: skip
    for i in range(5):
        blob = seal(b"%d" % i, sender=world.mex, trust=world.trust, suite=SuiteId.CLASSIC,
                    now=NOW, **kw)  # fmt: skip
        assert opener.open(blob).plaintext == b"%d" % i
    assert len(opener.deks) == 1
    assert len(opener._roots) == 2
    assert "USA-ATF" in repr(opener)


def test_derived_record_carries_provenance(world: World, envelope: bytes) -> None:
    parent = verify(envelope, trust=world.trust, now=NOW)
    handling = HANDLING.__class__(tlp="AMBER", releasable_to=("MEX", "USA"), originator="MEX-FGR")
    child = seal(b"derived", sender=world.usa, trust=world.trust, recipients=["MEX-FGR"],
                 suite=SuiteId.CLASSIC, record_type="trace-response",
                 schema_fingerprint=FINGERPRINT, handling=handling, topic="t",
                 provenance=[parent.as_parent()], now=NOW)  # fmt: skip
    (p,) = verify(child, trust=world.trust, now=NOW).header.provenance
    assert p.message_id == parent.message_id
    assert p.digest == parent.signing_digest


def test_recipient_key_is_named_in_the_header(
    world: World, envelope: bytes, suite: SuiteId
) -> None:
    _, header = parts(envelope)
    expected = world.usa.current_key(suite, at=NOW)
    assert header.recipient_key("USA-ATF") == KeyRef("USA-ATF", expected.key_id)
    assert header.recipient_key("USA-HSI") is None


class LockedKeyStore(CountingSigner):
    """A recipient whose key store cannot be unlocked (a local fault, not an attack)."""

    def hpke_open(self, key_id: str, sealed: bytes, *, info: bytes) -> bytes:
        del key_id, sealed, info  # never reached: unlocking fails first
        raise ConfigurationError("cannot unlock the key store")


def test_local_key_store_fault_is_not_reported_as_an_integrity_failure(
    world: World, envelope: bytes
) -> None:
    opener = Opener(world.trust, recipient=LockedKeyStore(world.usa), clock=lambda: NOW)
    with pytest.raises(ConfigurationError, match="cannot unlock"):
        opener.open(envelope)


def test_sender_key_rotation_mid_batch_signs_each_generation_separately(world: World) -> None:
    agency = InMemoryAgency("MEX-FGR")
    agency.add_generation(SuiteId.CLASSIC, key_id="old", not_after=NOW + timedelta(seconds=1))
    agency.add_generation(SuiteId.CLASSIC, key_id="new", not_before=NOW + timedelta(seconds=1))
    trust = InMemoryTrust([*agency.public_keys(), *world.usa.public_keys()])
    signer = CountingSigner(agency)
    with BatchSealer(signer, trust, suite=SuiteId.CLASSIC, linger=timedelta(hours=1)) as b:
        first = b.add(b"1", **message(now=NOW))
        second = b.add(b"2", **message(now=NOW + timedelta(seconds=2)))
    assert signer.calls == 2
    opener = Opener(trust, recipient=world.usa, clock=lambda: NOW + timedelta(seconds=2))
    assert opener.verify(first.result()).header.sender.key_id == "old"
    assert opener.verify(second.result()).header.sender.key_id == "new"


def test_stale_dek_epochs_are_dropped(world: World) -> None:
    sealer = world.sealer(SuiteId.CLASSIC, epoch_policy=EpochPolicy(max_age=timedelta(seconds=5)))
    sealer.seal(b"a", **message(recipients=["USA-ATF"], now=NOW))
    sealer.seal(b"b", **message(recipients=["USA-CBP"], now=NOW))
    assert len(sealer._epochs) == 2
    sealer.seal(b"c", **message(recipients=["USA-ATF"], now=NOW + timedelta(seconds=6)))
    assert len(sealer._epochs) == 1  # the USA-CBP DEK died with its epoch


def test_poll_loop_flushes_after_linger(world: World) -> None:
    b = BatchSealer(world.mex, world.trust, suite=SuiteId.CLASSIC, max_batch=64,
                    linger=timedelta(milliseconds=50), clock=lambda: NOW)  # fmt: skip
    pending = b.add(b"x", **message(now=NOW))
    assert b.flush_if_due(NOW + timedelta(milliseconds=10)) == 0
    assert not pending.done()
    assert b.flush_if_due(NOW + timedelta(milliseconds=60)) == 1
    assert pending.done()
