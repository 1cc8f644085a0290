"""Signed notes, checkpoints and cosignatures against published and independent encodings.

The PeterNeumann note is the example of golang.org/x/mod/sumdb/note (also in C2SP
signed-note): Ed25519 is deterministic (RFC 8032), so signing its text with its key must give
the published note byte for byte, and its key hash must be the published ``c74f20a3``.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from exchange.audit import (
    AgencyNoteSigner,
    AuditFormatError,
    Checkpoint,
    Note,
    SignedCheckpoint,
    cosign,
    key_name,
    log_origin,
    sign_checkpoint,
)
from exchange.audit.note import key_hash, parse_key_name, sign_note, verify_ed25519
from tests.unit.audit.audit_world import NOW, AuditWorld

GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


class RawSigner:
    """A NoteSigner over a raw Ed25519 key (known-answer tests only)."""

    def __init__(self, name: str, key: ed25519.Ed25519PrivateKey) -> None:
        self.name = name
        self._key = key
        self.public_key = key.public_key()

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


def _go_signer() -> RawSigner:
    blob = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert blob[0] == 0x01  # signed-note algorithm byte: Ed25519
    return RawSigner("PeterNeumann", ed25519.Ed25519PrivateKey.from_private_bytes(blob[1:]))


def test_signing_reproduces_the_published_go_note() -> None:
    signer = _go_signer()
    vkey = base64.b64decode(GO_VKEY.split("+", 2)[2])
    assert vkey[1:] == signer.public_key.public_bytes_raw()
    assert key_hash("PeterNeumann", signer.public_key) == bytes.fromhex("c74f20a3")
    assert sign_note(GO_TEXT, signer).encode() == GO_NOTE.encode()


def test_the_published_go_note_parses_and_verifies() -> None:
    signer = _go_signer()
    note = Note.parse(GO_NOTE.encode())
    assert note.text == GO_TEXT
    assert note.encode() == GO_NOTE.encode()
    (sig,) = note.signatures
    assert verify_ed25519(signer.public_key, sig.signature, note.text.encode())
    tampered = Note.parse(GO_NOTE.replace("cryptography", "cryptographY").encode())
    assert not verify_ed25519(signer.public_key, sig.signature, tampered.text.encode())


@pytest.mark.parametrize(
    "bad",
    [
        GO_TEXT,  # no signature block
        GO_TEXT + "\n",  # blank line but no signature
        GO_NOTE.replace("— ", "- "),  # not an em dash
        GO_NOTE.replace("PeterNeumann x08", "Peter+Neumann x08"),  # '+' in the name
        GO_NOTE.replace("AM=\n", "AM=\n\n"),  # trailing blank line
        GO_NOTE.replace("x08go", "x08g!"),  # not base64
        GO_NOTE.replace("x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgK"
                        "vqfqdngotpRZb6KE6RyyBwJnAM=", "AAAA"),  # too short
        "\x00" + GO_NOTE,  # control character in the text
        GO_NOTE.rstrip("\n"),  # no final newline
        GO_TEXT + "\n" + "— PeterNeumann AAAAAAA=\n" * 17,  # too many signatures
    ],
)  # fmt: skip
def test_malformed_notes_are_refused(bad: str) -> None:
    with pytest.raises(AuditFormatError):
        Note.parse(bad.encode())


def test_key_names_carry_agency_and_key_generation() -> None:
    name = key_name("USA-ATF", "classic-1")
    assert name == "exchange.bus/key/USA-ATF/classic-1"
    assert parse_key_name(name) == ("USA-ATF", "classic-1")
    assert parse_key_name("PeterNeumann") is None
    assert parse_key_name("exchange.bus/key/usa-atf/classic-1") is None
    with pytest.raises(ValueError, match="expected an agency id"):
        key_name("USA-ATF", "bad+id")


def test_checkpoint_body_is_the_c2sp_format() -> None:
    root = hashlib.sha256(b"").digest()
    cp = Checkpoint(log_origin("MEX-FGR"), 0, root, 1764298197)
    assert cp.body() == (
        "exchange.bus/audit/v1/MEX-FGR\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
        "time 1764298197\n"
    )
    assert Checkpoint.parse(cp.body()) == cp
    for bad in [
        cp.body().replace("\n0\n", "\n00\n"),
        cp.body().replace("time ", "time  "),
        cp.body() + "extra\n",
        cp.body().replace("exchange.bus/audit/v1/MEX-FGR", "example.com/log"),
        cp.body().replace("SuFU=", "SuFV="),  # non-canonical base64 padding bits
    ]:
        with pytest.raises(AuditFormatError):
            Checkpoint.parse(bad)


def test_cosignature_is_the_c2sp_cosignature_v1_construction() -> None:
    cp = Checkpoint(log_origin("MEX-FGR"), 3, bytes(range(32)), 1764298197)
    signer = RawSigner("exchange.bus/key/USA-ATF/classic-1", ed25519.Ed25519PrivateKey.generate())
    line = cosign(cp, signer, timestamp=1764298200)
    # Assembled independently from c2sp.org/tlog-cosignature.
    raw = signer.public_key.public_bytes_raw()
    kid = hashlib.sha256(signer.name.encode() + b"\n\x04" + raw).digest()[:4]
    message = b"cosignature/v1\ntime 1764298200\n" + cp.body().encode()
    assert line.key_hash == kid
    assert line.signature[:8] == (1764298200).to_bytes(8, "big")
    signer.public_key.verify(line.signature[8:], message)


def test_signed_checkpoint_round_trips_and_log_signature_verifies(world: AuditWorld) -> None:
    cp = Checkpoint(log_origin("MEX-FGR"), 1, bytes(32), int(NOW.timestamp()))
    signed = sign_checkpoint(cp, world.log_signer())
    again = SignedCheckpoint.parse(signed.encode())
    assert again == signed
    assert again.verify_log_signature(world.trust)
    by_witness = sign_checkpoint(cp, AgencyNoteSigner(world.atf, at=NOW))
    assert not by_witness.verify_log_signature(world.trust)  # another agency's key
    unknown = sign_checkpoint(cp, RawSigner(world.log_signer().name,
                                            ed25519.Ed25519PrivateKey.generate()))  # fmt: skip
    assert not unknown.verify_log_signature(world.trust)  # right name, wrong key
