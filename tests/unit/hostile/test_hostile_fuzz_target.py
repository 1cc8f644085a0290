"""The atheris fuzz target (fuzz/envelope_target.py) without atheris: its seeds are valid
inputs of every mode and suite, and its entry function runs over them and over hostile
variants without a finding. CI exercises the target this way; ``make fuzz`` runs it under
libFuzzer (docs/hostile-input.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Message

from exchange.consumers._examine import Accepted
from exchange.crypto import SuiteId
from exchange.crypto.envelope import decode_envelope
from exchange.crypto.header import decode_header
from fuzz import envelope_target as target
from fuzz.fuzz_envelope import _parse, _write_seeds


def _seeds() -> list[bytes]:
    return list(target.seed_corpus())


def test_the_seed_corpus_covers_every_mode_and_suite() -> None:
    seeds = _seeds()
    modes = {s[0] for s in seeds}
    assert modes == {target.ENVELOPE, target.SIGNED_HEADER, target.SEALED_RECORD}
    suites = {decode_header(decode_envelope(s[1:]).header_bytes).suite
              for s in seeds if s[0] == target.ENVELOPE}  # fmt: skip
    assert suites == set(SuiteId)


def test_every_seed_is_accepted_by_the_consumer() -> None:
    w = target.world()
    for seed in _seeds():
        mode, body = seed[0], seed[1:]
        if mode == target.SIGNED_HEADER:
            suite = decode_header(body).suite
            body = w.resign(body, target._templates()[suite])
        elif mode == target.SEALED_RECORD:
            body = w.seal(body)
        verdict = w.examiner.examine(Message(topic=target.TOPIC, value=body))
        assert isinstance(verdict, Accepted), (mode, verdict)
        assert verdict.record == w.record


def test_the_entry_function_runs_over_the_seeds_and_their_mutations() -> None:
    for seed in _seeds():
        target.fuzz_one(seed)
        for variant in (
            seed[:1],  # the mode byte alone
            seed[: len(seed) // 2],  # truncated
            seed[:1] + bytes(len(seed) - 1),  # zeroed
            seed[:-1] + bytes([seed[-1] ^ 0x40]),  # last byte flipped
            bytes([seed[0] + 3]) + seed[1:],  # the mode byte is taken modulo 3
        ):
            target.fuzz_one(variant)  # a finding would raise
    target.fuzz_one(b"")


def test_a_hostile_signed_header_is_refused_after_the_signature() -> None:
    # Mode 1 reaches the checks behind the signature: an enrolled sender who signs a header
    # addressing an agency that is not enrolled is refused, never opened.
    w = target.world()
    template = target._templates()[SuiteId.CLASSIC]
    header = template.header_bytes.replace(b"USA-ATF", b"USA-XXX")
    blob = w.resign(header, template)
    verified = w.auditor.verify(blob, now=target.NOW)  # the signature is real ...
    assert [r.agency_id for r in verified.header.recipients] == ["USA-XXX"]
    # ... and USA-ATF's consumer sees an envelope for someone else: never decrypted.
    assert w.examiner.examine(Message(topic=target.TOPIC, value=blob)) is None
    target.fuzz_one(bytes([target.SIGNED_HEADER]) + header)


def test_the_runner_seeds_a_corpus_directory(tmp_path: Path) -> None:
    args, extra = _parse(["--seconds", "5", "--corpus", str(tmp_path / "c"), "--", "-jobs=1"])
    assert (args.seconds, extra) == (5, ["-jobs=1"])
    seeds = _seeds()
    assert _write_seeds(args.corpus, seeds) == len(seeds)
    assert _write_seeds(args.corpus, seeds) == len(seeds)  # idempotent: named by digest
    assert sorted(p.read_bytes() for p in args.corpus.iterdir()) == sorted(set(seeds))
    with pytest.raises(SystemExit):
        _parse(["--seconds", "0"])
