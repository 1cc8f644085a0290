"""The digests the audit entries carry: what a producer knows of its own envelopes equals
what a verifier computes, so publish and delivery entries of one message agree."""

from __future__ import annotations

import hashlib

import pytest

from exchange.crypto import BatchSealer, SuiteId, verify
from exchange.crypto.envelope import decode_envelope
from tests.unit.crypto.envelope_world import NOW, World, message


@pytest.mark.parametrize("suite", list(SuiteId))
def test_pending_envelope_digests_equal_the_verifiers(suite: SuiteId) -> None:
    world = World()
    with BatchSealer(world.mex, world.trust, suite=suite, max_batch=3, clock=lambda: NOW) as b:
        futures = [b.add(p, **message()) for p in (b"zero", b"one", b"two")]
    for future in futures:
        verified = verify(future.result(), trust=world.trust, now=NOW)
        assert future.header == verified.header
        assert future.signing_digest == verified.signing_digest
        assert future.header_digest == verified.header_digest
    assert len({f.signing_digest for f in futures}) == 3


def test_header_digest_is_the_digest_of_the_signed_header_bytes() -> None:
    world = World()
    with BatchSealer(world.mex, world.trust, suite=SuiteId.CLASSIC, clock=lambda: NOW) as b:
        future = b.add(b"record", **message())
    raw = decode_envelope(future.result())
    # h_hdr is labelled, so it is not the bare hash of the header bytes.
    assert future.header_digest != hashlib.sha256(raw.header_bytes).digest()
    assert len(future.header_digest) == 32


def test_pending_envelope_digests_need_a_flushed_batch() -> None:
    world = World()
    sealer = BatchSealer(world.mex, world.trust, suite=SuiteId.CLASSIC, clock=lambda: NOW)
    future = sealer.add(b"record", **message())
    for read in (
        lambda: future.header,
        lambda: future.signing_digest,
        lambda: future.header_digest,
    ):
        with pytest.raises(RuntimeError):
            read()
    sealer.flush()
    assert future.signing_digest
