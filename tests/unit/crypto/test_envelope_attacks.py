"""Attacks on envelope v1, each named after the attack. Every one must be rejected with the
one opaque IntegrityError, and the reason code kept for quarantine must say why."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta

import pytest

from exchange.crypto import Opener, SuiteId, open, seal, verify
from exchange.crypto.dek import DekEpoch, EpochPolicy
from exchange.crypto.envelope import aad, commitment, decode_envelope, encode_envelope
from exchange.crypto.header import KeyRef, encode_header
from exchange.crypto.testing import InMemoryAgency, InMemoryTrust
from exchange.errors import IntegrityError, IntegrityReason
from exchange.policy import HandlingSummary
from tests.unit.crypto.envelope_world import (
    NOW,
    PLAINTEXT,
    Mode,
    World,
    message,
    parts,
    resign,
    with_header,
)

R = IntegrityReason


def rejected(call: Callable[..., object], *args: object, **kw: object) -> IntegrityReason:
    with pytest.raises(IntegrityError) as info:
        call(*args, **kw)
    assert str(info.value) == "envelope failed integrity verification"  # opaque, always
    return info.value.reason


def test_flipped_byte_anywhere_is_rejected(world: World, envelope: bytes) -> None:
    # A warm opener first: the root and DEK caches must not mask any flipped byte.
    opener = Opener(world.trust, recipient=world.usa, clock=lambda: NOW)
    assert opener.open(envelope).plaintext == PLAINTEXT
    for i in range(len(envelope)):
        for bit in (0x01, 0x80):
            mutated = envelope[:i] + bytes([envelope[i] ^ bit]) + envelope[i + 1 :]
            with pytest.raises(IntegrityError):
                opener.verify(mutated)
    assert opener.open(envelope).plaintext == PLAINTEXT


def test_flipped_byte_is_rejected_by_open_too(world: World, envelope: bytes) -> None:
    opener = Opener(world.trust, recipient=world.usa, clock=lambda: NOW)
    for i in range(0, len(envelope), max(1, len(envelope) // 97)):
        mutated = envelope[:i] + bytes([envelope[i] ^ 0x04]) + envelope[i + 1 :]
        rejected(opener.open, mutated)


def test_wrong_recipient_cannot_open(world: World, envelope: bytes) -> None:
    assert (
        rejected(open, envelope, recipient=world.hsi, trust=world.trust, now=NOW)
        is R.NOT_A_RECIPIENT
    )
    assert (
        rejected(open, envelope, recipient=world.mex, trust=world.trust, now=NOW)
        is R.NOT_A_RECIPIENT
    )


def test_recipient_removed_is_detected(world: World, envelope: bytes) -> None:
    raw, header = parts(envelope)
    fewer = dataclasses.replace(header, recipients=header.recipients[:1])
    forged = dataclasses.replace(raw, header_bytes=encode_header(fewer), wraps=raw.wraps[:1])
    assert rejected(verify, encode_envelope(forged), trust=world.trust, now=NOW) is R.BAD_SIGNATURE
    # dropping only the wrap breaks the header/body agreement before any crypto
    only_wrap = dataclasses.replace(raw, wraps=raw.wraps[:1])
    assert rejected(verify, encode_envelope(only_wrap), trust=world.trust, now=NOW) is R.MALFORMED


def test_recipient_added_is_detected(world: World, envelope: bytes, suite: SuiteId) -> None:
    raw, header = parts(envelope)
    hsi = KeyRef("USA-HSI", world.hsi.current_key(suite, at=NOW).key_id)
    more = dataclasses.replace(header, recipients=(*header.recipients, hsi))
    forged = dataclasses.replace(
        raw, header_bytes=encode_header(more), wraps=(*raw.wraps, raw.wraps[0])
    )
    assert rejected(verify, encode_envelope(forged), trust=world.trust, now=NOW) is R.BAD_SIGNATURE
    assert rejected(open, encode_envelope(forged), recipient=world.hsi, trust=world.trust,
                    now=NOW) is R.BAD_SIGNATURE  # fmt: skip


def test_header_moved_between_envelopes_is_rejected(
    world: World, suite: SuiteId, mode: Mode
) -> None:
    a, b = world.make(suite, mode, plaintext=b"A"), world.make(suite, mode, plaintext=b"B")
    raw_a, raw_b = decode_envelope(a), decode_envelope(b)
    moved = encode_envelope(dataclasses.replace(raw_b, header_bytes=raw_a.header_bytes))
    assert rejected(verify, moved, trust=world.trust, now=NOW) is R.BAD_SIGNATURE


def test_ciphertext_moved_between_envelopes_is_rejected(
    world: World, suite: SuiteId, mode: Mode
) -> None:
    a, b = world.make(suite, mode, plaintext=b"A"), world.make(suite, mode, plaintext=b"B")
    raw_a, raw_b = decode_envelope(a), decode_envelope(b)
    moved = encode_envelope(dataclasses.replace(raw_b, ciphertext=raw_a.ciphertext))
    assert rejected(verify, moved, trust=world.trust, now=NOW) is R.BAD_SIGNATURE
    # Even the legitimate sender re-signing the spliced parts cannot make it open: the AEAD
    # associated data is H(header), so the ciphertext only decrypts under its own header.
    key_id = world.mex.current_key(suite, at=NOW).key_id
    spliced = resign(world.mex, key_id, suite, (raw_b.header_bytes, raw_b.wraps, raw_a.ciphertext))
    verify(spliced, trust=world.trust, now=NOW)  # the sender did sign it ...
    reason = rejected(open, spliced, recipient=world.usa, trust=world.trust, now=NOW)
    assert reason in {R.DECRYPTION_FAILED, R.BAD_KEY_WRAP}  # ... but it never decrypts


def test_signature_restripped_by_other_agency_is_rejected(
    world: World, envelope: bytes, suite: SuiteId
) -> None:
    raw, header = parts(envelope)
    hsi_key = world.hsi.current_key(suite, at=NOW).key_id
    # 1. keep MEX-FGR as sender, sign as USA-HSI: the sender's key does not verify it
    stripped = resign(world.hsi, hsi_key, suite, (raw.header_bytes, raw.wraps, raw.ciphertext))
    assert rejected(verify, stripped, trust=world.trust, now=NOW) is R.BAD_SIGNATURE
    # 2. claim to be the sender: signature verifies, but the content never opens because the
    #    HPKE info binds the real sender and the AEAD data binds the original header
    claimed = dataclasses.replace(header, sender=KeyRef("USA-HSI", hsi_key))
    hb = encode_header(claimed)
    restamped = resign(world.hsi, hsi_key, suite, (hb, raw.wraps, raw.ciphertext))
    assert verify(restamped, trust=world.trust, now=NOW).header.sender.agency_id == "USA-HSI"
    opener = Opener(world.trust, recipient=world.usa, clock=lambda: NOW)
    opener.open(envelope)  # warm DEK cache must not help the forger
    assert rejected(opener.open, restamped) is R.BAD_KEY_WRAP


def test_suite_downgrade_is_rejected(world: World, suite: SuiteId, mode: Mode) -> None:
    envelope = world.make(suite, mode)
    # Relabel the header with another suite, keeping the sender's key id: the key's suite wins.
    for other in SuiteId:
        if other is not suite:
            forged = with_header(envelope, suite=other)
            reason = rejected(verify, forged, trust=world.trust, now=NOW)
            assert reason in {R.MALFORMED, R.OVERSIZED, R.SUITE_MISMATCH}
    # The clean downgrade: a well-formed classic envelope naming the sender's pq-hybrid key,
    # signed with only the Ed25519 half (what an attacker who broke ML-DSA's partner could do).
    if suite is SuiteId.PQ_HYBRID:
        pq_key = world.mex.current_key(SuiteId.PQ_HYBRID, at=NOW)
        classic = world.make(SuiteId.CLASSIC, mode)
        raw, header = parts(classic)
        hb = encode_header(dataclasses.replace(header, sender=KeyRef("MEX-FGR", pq_key.key_id)))
        ed_only = _OnlyFirstSignature(world.mex)
        forged = resign(ed_only, pq_key.key_id, SuiteId.CLASSIC, (hb, raw.wraps, raw.ciphertext))
        assert rejected(verify, forged, trust=world.trust, now=NOW) is R.SUITE_MISMATCH


class _OnlyFirstSignature:
    def __init__(self, inner: InMemoryAgency) -> None:
        self.inner = inner

    def sign(self, key_id: str, message: bytes) -> tuple[bytes, ...]:
        return self.inner.sign(key_id, message)[:1]


def test_consumer_requiring_pq_refuses_classic(
    world: World, envelopes: dict[tuple[SuiteId, Mode], bytes]
) -> None:
    pq_only = Opener(world.trust, recipient=world.usa, accept_suites=frozenset({SuiteId.PQ_HYBRID}),
                     clock=lambda: NOW)  # fmt: skip
    assert pq_only.open(envelopes[(SuiteId.PQ_HYBRID, Mode.SINGLE)]).plaintext == PLAINTEXT
    assert rejected(pq_only.open, envelopes[(SuiteId.CLASSIC, Mode.SINGLE)]) is R.SUITE_MISMATCH


@pytest.mark.parametrize("which", [0, 1], ids=["ed25519-replaced", "mldsa-replaced"])
def test_pq_hybrid_needs_both_signatures(world: World, which: int) -> None:
    envelope = world.make(SuiteId.PQ_HYBRID)
    raw, _ = parts(envelope)
    key_id = world.mex.current_key(SuiteId.PQ_HYBRID, at=NOW).key_id
    other = world.mex.sign(key_id, b"some other message")
    sigs = list(raw.seal.signatures)
    sigs[which] = other[which]
    forged = dataclasses.replace(raw, seal=dataclasses.replace(raw.seal, signatures=tuple(sigs)))
    assert rejected(verify, encode_envelope(forged), trust=world.trust, now=NOW) is R.BAD_SIGNATURE
    dropped = dataclasses.replace(
        raw, seal=dataclasses.replace(raw.seal, signatures=raw.seal.signatures[:1])
    )
    assert rejected(verify, encode_envelope(dropped), trust=world.trust, now=NOW) is R.MALFORMED


def test_expired_envelope_is_rejected(world: World, envelope: bytes) -> None:
    expires = parts(envelope)[1].expires_at
    verify(envelope, trust=world.trust, now=expires + timedelta(minutes=4))  # within skew
    late = expires + timedelta(minutes=5, seconds=1)
    assert rejected(verify, envelope, trust=world.trust, now=late) is R.EXPIRED


def test_validity_longer_than_366_days_is_rejected(world: World, envelope: bytes) -> None:
    _, header = parts(envelope)
    forever = with_header(envelope, expires_us=header.created_us + 367 * 86_400 * 10**6)
    assert rejected(verify, forever, trust=world.trust, now=NOW) is R.MALFORMED


def test_envelope_from_the_future_is_rejected(world: World, envelope: bytes) -> None:
    early = NOW - timedelta(minutes=5, seconds=1)
    assert rejected(verify, envelope, trust=world.trust, now=early) is R.NOT_YET_VALID


def test_revoked_key_is_rejected(world: World, envelope: bytes, suite: SuiteId) -> None:
    key = world.mex.current_key(suite, at=NOW)
    trust = InMemoryTrust.of(world.mex, world.usa, world.cbp)
    trust.revoke("MEX-FGR", key.key_id, at=NOW - timedelta(days=1))
    assert rejected(verify, envelope, trust=trust, now=NOW) is R.REVOKED_KEY
    # revoked after signing: the message was signed while the key was good
    later = InMemoryTrust.of(world.mex, world.usa, world.cbp)
    later.revoke("MEX-FGR", key.key_id, at=NOW + timedelta(seconds=1))
    assert verify(envelope, trust=later, now=NOW).header.sender.key_id == key.key_id


def test_not_yet_valid_key_is_rejected(world: World, envelope: bytes, suite: SuiteId) -> None:
    key = world.mex.current_key(suite, at=NOW)
    for window in (
        dataclasses.replace(key, not_before=NOW + timedelta(hours=1)),
        dataclasses.replace(key, not_after=NOW - timedelta(hours=1)),
    ):
        trust = InMemoryTrust([window])
        assert rejected(verify, envelope, trust=trust, now=NOW) is R.KEY_NOT_VALID_AT_SIGNING_TIME


def test_unenrolled_sender_is_rejected(world: World, envelope: bytes) -> None:
    trust = InMemoryTrust.of(world.usa, world.cbp)
    assert rejected(verify, envelope, trust=trust, now=NOW) is R.UNTRUSTED_SENDER


def test_sender_not_allowed_to_publish_record_type_is_rejected(
    world: World, suite: SuiteId
) -> None:
    envelope = world.make(suite, record_type="intel")
    key = world.mex.current_key(suite, at=NOW)
    no_intel = dataclasses.replace(key, may_publish=frozenset({"seizure"}))
    trust = InMemoryTrust([no_intel, *world.usa.public_keys()])
    assert rejected(verify, envelope, trust=trust, now=NOW) is R.SENDER_NOT_AUTHORIZED
    # and the producer side refuses before sealing
    lab = InMemoryAgency.generate("MEX-FGR", [suite], may_publish=frozenset({"seizure"}))
    with pytest.raises(Exception, match="may not publish 'intel'"):
        seal(b"x", sender=lab, trust=world.trust, suite=suite, **message(record_type="intel"))


def test_recipient_outside_releasable_to_is_rejected(world: World, suite: SuiteId) -> None:
    mex_only = HandlingSummary(tlp="AMBER", releasable_to=("MEX",), originator="MEX-FGR")
    with pytest.raises(Exception, match="outside releasable-to"):
        seal(b"x", sender=world.mex, trust=world.trust, suite=suite, **message(handling=mex_only))
    # A sender that skips its own policy check and signs anyway is caught by every verifier.
    forged = with_header(world.make(suite), handling=mex_only)
    raw, _ = parts(forged)
    key_id = world.mex.current_key(suite, at=NOW).key_id
    resigned = resign(world.mex, key_id, suite, (raw.header_bytes, raw.wraps, raw.ciphertext))
    assert rejected(verify, resigned, trust=world.trust, now=NOW) is R.HANDLING_VIOLATION


def test_commitment_mismatch_is_detected(world: World, suite: SuiteId) -> None:
    # A malicious sender commits to one plaintext and encrypts another.
    _, header = parts(world.make(suite))
    usa, cbp = (world.trust.current_key(a, suite, at=NOW) for a in ("USA-ATF", "USA-CBP"))
    epoch = DekEpoch.start(suite=suite, sender="MEX-FGR", recipients=(usa, cbp), now=NOW,
                           policy=EpochPolicy())  # fmt: skip
    salt = b"s" * 32
    h = dataclasses.replace(header, dek_epoch=epoch.epoch_id, nonce_counter=0,
                            commitment=commitment(suite, salt, b"what was promised"))  # fmt: skip
    hb = encode_header(h)
    ct = epoch.encrypt(salt + b"what was sent", aad(suite, hb), epoch.take())
    key_id = world.mex.current_key(suite, at=NOW).key_id
    forged = resign(world.mex, key_id, suite, (hb, epoch.wraps, ct))
    assert (
        rejected(open, forged, recipient=world.usa, trust=world.trust, now=NOW)
        is R.COMMITMENT_MISMATCH
    )


def test_batch_leaf_index_swapped_is_rejected(world: World, suite: SuiteId) -> None:
    raw, _ = parts(world.make(suite, Mode.BATCH))
    for index in (0, 2):
        seal_ = dataclasses.replace(raw.seal, leaf_index=index)
        forged = encode_envelope(dataclasses.replace(raw, seal=seal_))
        assert rejected(verify, forged, trust=world.trust, now=NOW) in {
            R.BAD_SIGNATURE,
            R.BAD_INCLUSION_PROOF,
        }
    short = dataclasses.replace(raw.seal, path=raw.seal.path[:1])
    forged = encode_envelope(dataclasses.replace(raw, seal=short))
    assert rejected(verify, forged, trust=world.trust, now=NOW) is R.BAD_INCLUSION_PROOF
    grown = dataclasses.replace(raw.seal, batch_size=4)
    forged = encode_envelope(dataclasses.replace(raw, seal=grown))
    assert rejected(verify, forged, trust=world.trust, now=NOW) is R.BAD_SIGNATURE


def test_unknown_wire_version_is_rejected(world: World, envelope: bytes) -> None:
    assert (
        rejected(verify, envelope[:2] + b"\x02" + envelope[3:], trust=world.trust)
        is R.UNKNOWN_VERSION
    )
    assert rejected(verify, b"XF" + envelope[2:], trust=world.trust) is R.MALFORMED


def test_unknown_header_version_and_suite_are_rejected(world: World, envelope: bytes) -> None:
    assert (
        rejected(verify, with_header(envelope, version=2), trust=world.trust) is R.UNKNOWN_VERSION
    )
    raw, header = parts(envelope)
    hb = raw.header_bytes
    suite_text = header.suite.value.encode()
    bogus = hb.replace(suite_text, b"x" * len(suite_text), 1)
    forged = encode_envelope(dataclasses.replace(raw, header_bytes=bogus))
    assert rejected(verify, forged, trust=world.trust) is R.UNKNOWN_SUITE


def test_truncated_and_trailing_bytes_are_rejected(world: World, envelope: bytes) -> None:
    for cut in (0, 1, 3, len(envelope) // 2, len(envelope) - 1):
        assert rejected(verify, envelope[:cut], trust=world.trust) is R.MALFORMED
    assert rejected(verify, envelope + b"\x00", trust=world.trust) is R.MALFORMED


def test_oversized_envelope_is_rejected_before_decoding(world: World) -> None:
    assert rejected(verify, b"XE\x01" + b"\x00" * (1 << 20), trust=world.trust) is R.OVERSIZED


def test_non_bytes_input_is_a_programmer_error(world: World) -> None:
    with pytest.raises(TypeError, match="expected bytes"):
        verify("XE", trust=world.trust)  # type: ignore[arg-type]  # the misuse under test


def test_error_is_opaque_for_every_reason() -> None:
    errors = [IntegrityError(r) for r in IntegrityReason]
    assert {str(e) for e in errors} == {"envelope failed integrity verification"}
    assert {repr(e) for e in errors} == {"IntegrityError()"}
