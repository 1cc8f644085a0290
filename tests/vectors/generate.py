"""Regenerate the envelope v1 known-answer vectors: ``python tests/vectors/generate.py``.

Writes ``tests/vectors/envelope_v1.json``; ``--check`` exits 1 if the file is not current.

Everything is derived from fixed seeds through the private deterministic paths of the
recipes (STYLE.md §3: never reachable from the public API): key pairs, message ids, DEKs,
epoch ids, salts and, for cnsa, RFC 6979 deterministic ECDSA. Two primitives take no
injectable randomness in ``cryptography``: HPKE encapsulation (RFC 9180 §4, ephemeral key)
and hedged ML-DSA-65 signing (FIPS 204 §3.4). Their outputs are recorded in the file's
``tape``; regeneration reuses a recorded value only after checking that it is still valid
for exactly the same inputs (the wrap opens to the same DEK with the same ``info``; the
signature verifies over the same message), and otherwise makes a fresh one. So the file is
reproducible, and any change to the format shows up as a diff.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, mldsa, mlkem, x25519

from exchange.crypto import BatchSealer, EpochPolicy, HandlingSummary, Opener, Sealer, SuiteId
from exchange.crypto.envelope import (
    L_CIPHERTEXT,
    L_WRAPS,
    aad,
    decode_envelope,
    encode_envelope,
    encode_wraps,
    root_message,
    signing_digest,
    wrap_info,
)
from exchange.crypto.hazmat import counter_nonce, digest  # noqa: TID251 - KAT intermediates
from exchange.crypto.header import decode_header, encode_header
from exchange.crypto.keys import AgencyKey, KemPublicKey
from exchange.crypto.merkle import leaf_hash, root_from_path
from exchange.crypto.suites import suite_info
from exchange.crypto.testing import InMemoryAgency, InMemoryTrust
from exchange.errors import IntegrityError

OUT = Path(__file__).with_name("envelope_v1.json")
SEED = b"exchange envelope v1 known-answer vectors"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
AGENCIES = ("MEX-FGR", "USA-ATF", "USA-CBP", "USA-HSI")
FINGERPRINT = hashlib.sha256(b"KAT writer schema").digest()
HANDLING = HandlingSummary(
    tlp="AMBER_STRICT",
    releasable_to=("MEX", "USA"),
    originator="MEX-FGR",
    caveats=("LAW_ENFORCEMENT_SENSITIVE", "MX_RESERVADA"),
)


class Tape:
    """Recorded outputs of primitives without injectable randomness (see module docstring)."""

    def __init__(self, previous: dict[str, str], world: dict[str, InMemoryAgency]) -> None:
        self._previous = previous
        self.used: dict[str, str] = {}
        self._world = world

    def wrap(self, suite: SuiteId, dek: bytes, public: KemPublicKey, info: bytes) -> bytes:
        key = "hpke:" + hashlib.sha256(suite.value.encode() + info + dek).hexdigest()
        owner, key_id = self._owner(public)
        old = self._previous.get(key)
        if old is not None:
            try:
                if owner.hpke_open(key_id, bytes.fromhex(old), info=info) == dek:
                    self.used[key] = old
                    return bytes.fromhex(old)
            except IntegrityError:
                pass
        fresh = suite_info(suite).hpke_suite().encrypt(dek, public, info)
        self.used[key] = fresh.hex()
        return fresh

    def _owner(self, public: KemPublicKey) -> tuple[InMemoryAgency, str]:
        for agency in self._world.values():
            for k in agency.public_keys():
                if k.kem_key == public:
                    return agency, k.key_id
        raise LookupError("unknown KEM key")

    def mldsa(self, key: AgencyKey, message: bytes, fresh: bytes) -> bytes:
        tag = "mldsa:" + hashlib.sha256(key.key_id.encode() + message).hexdigest()
        old = self._previous.get(tag)
        public = key.signing_keys[1]
        if old is not None and isinstance(public, mldsa.MLDSA65PublicKey):
            try:
                public.verify(bytes.fromhex(old), message)
                self.used[tag] = old
                return bytes.fromhex(old)
            except Exception:  # noqa: BLE001, S110 - a stale tape entry is simply replaced
                pass
        self.used[tag] = fresh.hex()
        return fresh


class TapedAgency(InMemoryAgency):
    """A seeded agency whose hedged ML-DSA signatures go through the tape."""

    tape: Tape

    def sign(self, key_id: str, message: bytes) -> tuple[bytes, ...]:
        sigs = super().sign(key_id, message)
        key = next(k for k in self.public_keys() if k.key_id == key_id)
        if key.suite is SuiteId.PQ_HYBRID:
            return (sigs[0], self.tape.mldsa(key, message, sigs[1]))
        return sigs


class Drbg:
    """SHAKE-256 in counter mode: the deterministic stand-in for os.urandom, KATs only."""

    def __init__(self, label: str) -> None:
        self._label = label.encode()
        self._n = 0

    def __call__(self, n: int) -> bytes:
        self._n += 1
        return hashlib.shake_256(SEED + self._label + self._n.to_bytes(8, "big")).digest(n)


def _world(previous_tape: dict[str, str]) -> tuple[dict[str, TapedAgency], InMemoryTrust, Tape]:
    agencies: dict[str, TapedAgency] = {}
    for agency_id in AGENCIES:
        a = TapedAgency(agency_id, deterministic=True)
        for suite in SuiteId:
            a.add_generation(suite, seed=SEED)
        agencies[agency_id] = a
    tape = Tape(previous_tape, dict(agencies))
    for a in agencies.values():
        a.tape = tape
    return agencies, InMemoryTrust.of(*agencies.values()), tape


def _message(i: int) -> bytes:
    return hashlib.shake_256(b"KAT plaintext %d" % i).digest(40 + 7 * i)


def _seal(
    world: dict[str, TapedAgency], trust: InMemoryTrust, tape: Tape, suite: SuiteId, mode: str
) -> bytes:
    kw: dict[str, Any] = {
        "recipients": ["USA-ATF", "USA-CBP"],
        "record_type": "seizure",
        "schema_fingerprint": FINGERPRINT,
        "handling": HANDLING,
        "topic": "xchg.MEX-FGR.crossborder.seizure",
        "now": NOW,
    }
    common: dict[str, Any] = {
        "suite": suite,
        "producer_id": "MEX-FGR/kat",
        "producer_epoch": 1,
        "clock": lambda: NOW,
    }
    drbg = Drbg(f"{suite.value}/{mode}")
    if mode == "batch":
        batch = BatchSealer(world["MEX-FGR"], trust, max_batch=3, **common)
        batch._sealer._randbytes, batch._sealer._wrap = drbg, tape.wrap
        with batch:
            futures = [batch.add(_message(i), **kw) for i in range(3)]
        return futures[1].result()
    policy = EpochPolicy(max_messages=1 if mode == "single" else 100)
    sealer = Sealer(world["MEX-FGR"], trust, epoch_policy=policy, **common)
    sealer._randbytes, sealer._wrap = drbg, tape.wrap
    if mode == "epoch":
        sealer.seal(_message(0), **kw)
    return sealer.seal(_message(1), **kw)


def _public_hex(key: Any) -> str:
    """Raw public key bytes; P-384 as an uncompressed SEC1 point; X-Wing as ML-KEM || X25519."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(ser.Encoding.X962, ser.PublicFormat.UncompressedPoint).hex()
    return bytes(key.public_bytes_raw()).hex()


def _kem_public_hex(key: AgencyKey, private: dict[str, list[str]]) -> str:
    """X-Wing (draft-connolly-cfrg-xwing-kem) encapsulation key = ML-KEM-768 pk || X25519 pk."""
    if key.suite is not SuiteId.PQ_HYBRID:
        return _public_hex(key.kem_key)
    m_seed, x_raw = (bytes.fromhex(x) for x in private["kem"])
    m = mlkem.MLKEM768PrivateKey.from_seed_bytes(m_seed).public_key().public_bytes_raw()
    x = x25519.X25519PrivateKey.from_private_bytes(x_raw).public_key().public_bytes_raw()
    return (m + x).hex()


def _keys_json(world: dict[str, TapedAgency]) -> list[dict[str, Any]]:
    return [
            {
                "agencyId": k.agency_id, "keyId": k.key_id, "suite": k.suite.value,
                "notBefore": k.not_before.isoformat(), "notAfter": k.not_after.isoformat(),
                "mayPublish": sorted(k.may_publish),
                "signingKeys": [_public_hex(s) for s in k.signing_keys],
                "kemKey": _kem_public_hex(k, agency.unsafe_private_material(k.key_id)),
                "private": agency.unsafe_private_material(k.key_id),
            }
            for agency in world.values()
            for k in agency.public_keys()
        ]  # fmt: skip


def _reason(trust: InMemoryTrust, blob: bytes, now: datetime, agency: InMemoryAgency | None) -> str:
    opener = Opener(trust, recipient=agency, clock=lambda: now)
    try:
        opener.open(blob) if agency is not None else opener.verify(blob)
    except IntegrityError as exc:
        return exc.reason.value
    raise AssertionError("an invalid vector was accepted")


def _invalid(
    name: str, blob: bytes, reason_of: Any, *, now: datetime = NOW, open_as: str | None = None
) -> dict[str, Any]:
    return {"name": name, "envelope": blob.hex(), "now": now.isoformat(), "openAs": open_as,
            "reason": reason_of(blob, now, open_as)}  # fmt: skip


def _intermediate(world: dict[str, TapedAgency], blob: bytes) -> dict[str, str]:
    """Values an independent implementation can compare step by step (docs/envelope.md)."""
    raw = decode_envelope(blob)
    h = decode_header(raw.header_bytes)
    me = h.recipients[0]
    info = wrap_info(h.suite, h.sender.agency_id, me, h.dek_epoch)
    dek = world[me.agency_id].hpke_open(me.key_id, raw.wraps[0], info=info)
    hf = suite_info(h.suite).hash_factory
    d = signing_digest(h.suite, raw.header_bytes, raw.wraps, raw.ciphertext)
    root = root_from_path(hf, leaf_hash(hf, d), raw.seal.leaf_index, raw.seal.batch_size,
                          raw.seal.path)  # fmt: skip
    assert root is not None
    return {
        "headerBytes": raw.header_bytes.hex(),
        "aad": aad(h.suite, raw.header_bytes).hex(),
        "hWraps": digest(h.suite, L_WRAPS, encode_wraps(raw.wraps)).hex(),
        "hCiphertext": digest(h.suite, L_CIPHERTEXT, raw.ciphertext).hex(),
        "signingDigest": d.hex(),
        "leafHash": leaf_hash(hf, d).hex(),
        "rootMessage": root_message(h.suite, raw.seal.batch_size, root).hex(),
        f"wrapInfo[{me.agency_id}]": info.hex(),
        "dek": dek.hex(),
        "nonce": counter_nonce(h.nonce_counter).hex(),
    }


def _invalid_cases(s: str, blob: bytes, batch: bytes) -> list[tuple[str, bytes, dict[str, Any]]]:
    """Mutations of a valid single and batch envelope that need no re-signing."""
    raw = decode_envelope(blob)
    header = decode_header(raw.header_bytes)
    batch_raw = decode_envelope(batch)
    ct = bytes([raw.ciphertext[0] ^ 1]) + raw.ciphertext[1:]
    sig = bytes([raw.seal.signatures[0][0] ^ 1]) + raw.seal.signatures[0][1:]
    fewer = encode_header(replace(header, recipients=header.recipients[:1]))
    return [
        (f"{s}-bad-magic", b"XF" + blob[2:], {}),
        (f"{s}-unknown-wire-version", blob[:2] + b"\x02" + blob[3:], {}),
        (f"{s}-truncated", blob[:-1], {}),
        (f"{s}-trailing-byte", blob + b"\x00", {}),
        (f"{s}-hostile-header-length", b"XE\x01" + bytes.fromhex("feffffffffffffff7f"), {}),
        (f"{s}-flipped-ciphertext-byte", encode_envelope(replace(raw, ciphertext=ct)), {}),
        (f"{s}-flipped-signature-byte", encode_envelope(replace(
            raw, seal=replace(raw.seal, signatures=(sig, *raw.seal.signatures[1:])))), {}),
        (f"{s}-recipient-removed", encode_envelope(replace(
            raw, header_bytes=fewer, wraps=raw.wraps[:1])), {}),
        (f"{s}-expired", blob, {"now": header.expires_at + timedelta(days=1)}),
        (f"{s}-not-yet-valid", blob, {"now": NOW - timedelta(days=1)}),
        (f"{s}-not-a-recipient", blob, {"open_as": "USA-HSI"}),
        (f"{s}-batch-leaf-index-swapped", encode_envelope(replace(
            batch_raw, seal=replace(batch_raw.seal, leaf_index=0))), {}),
    ]  # fmt: skip


def generate(previous: dict[str, Any] | None) -> dict[str, Any]:
    """Build the vector file, reusing still-valid tape entries of ``previous``."""
    world, trust, tape = _world((previous or {}).get("tape", {}))

    def reason_of(blob: bytes, now: datetime, open_as: str | None) -> str:
        return _reason(trust, blob, now, world[open_as] if open_as else None)

    valid: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    for suite in SuiteId:
        for mode in ("single", "batch", "epoch"):
            blob = _seal(world, trust, tape, suite, mode)
            opened = Opener(trust, recipient=world["USA-ATF"], clock=lambda: NOW).open(blob)
            valid.append({
                "name": f"{suite.value}-{mode}", "suite": suite.value, "mode": mode,
                "now": NOW.isoformat(), "envelope": blob.hex(), "openAs": ["USA-ATF", "USA-CBP"],
                "plaintext": opened.plaintext.hex(), "salt": opened.salt.hex(),
                "header": opened.verified.to_dict(),
                "intermediate": _intermediate(world, blob),
            })  # fmt: skip
        single = bytes.fromhex(valid[-3]["envelope"])
        batch = bytes.fromhex(valid[-2]["envelope"])
        cases = _invalid_cases(suite.value, single, batch)
        invalid.extend(_invalid(n, b, reason_of, **kw) for n, b, kw in cases)
    return {
        "description": "Envelope v1 known-answer vectors (docs/envelope.md). Keys: seeded "
        "in-memory agencies, see tests/vectors/generate.py. 'tape' records HPKE and ML-DSA "
        "outputs that cryptography cannot derandomize.",
        "seed": SEED.decode(),
        "keys": _keys_json(world),
        "valid": valid,
        "invalid": invalid,
        "tape": dict(sorted(tape.used.items())),
    }


def render(vectors: dict[str, Any]) -> str:
    return json.dumps(vectors, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    previous = json.loads(OUT.read_text()) if OUT.exists() else None
    text = render(generate(previous))
    if args.check:
        current = OUT.read_text() if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is stale; run python tests/vectors/generate.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
