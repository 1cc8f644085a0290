"""Envelope v1 wire format: framing, bounds, canonical codec and the digests that bind it
(docs/envelope.md is the normative description; ``schemas/avro/envelope/`` the schemas).

::

    envelope  = "XE" 0x01 || Avro(Envelope)
    Envelope  = { header: bytes, wraps: [bytes], ciphertext: bytes,
                  seal: { batchSize: long, leafIndex: long, path: [bytes], signatures: [bytes] } }

Bounds are checked before anything is decoded (total size first, then every length prefix
before its bytes are read).
"""

from __future__ import annotations

from dataclasses import dataclass

from exchange.crypto import hazmat
from exchange.crypto._avro import AvroFormatError, Reader, Writer
from exchange.crypto.header import EnvelopeHeader, KeyRef
from exchange.crypto.keys import SuiteId
from exchange.crypto.merkle import MAX_PATH
from exchange.crypto.suites import suite_info

__all__ = [
    "MAGIC",
    "MAX_BATCH",
    "MAX_ENVELOPE",
    "MAX_RECIPIENTS",
    "WIRE_VERSION",
    "BatchSeal",
    "RawEnvelope",
    "aad",
    "commitment",
    "decode_envelope",
    "encode_envelope",
    "root_message",
    "signing_digest",
    "wrap_info",
]

MAGIC = b"XE"
WIRE_VERSION = 1
MAX_ENVELOPE = 1 << 20  # 1 MiB, whole envelope
MAX_HEADER = 64 << 10
MAX_RECIPIENTS = 64
MAX_WRAP = 2048  # largest: ML-KEM-768-X25519, 1120 + 48 bytes
MAX_SIGNATURE = 4096  # largest: ML-DSA-65, 3309 bytes
MAX_SIGNATURES = 2
MAX_BATCH = 1 << 16  # bounded by MAX_PATH too; 65536 leaves is 16 levels

# Domain-separation labels (docs/envelope.md, "Domain separation"). Never reuse one.
L_HEADER = b"exchange/envelope/v1/header"
L_WRAPS = b"exchange/envelope/v1/wraps"
L_CIPHERTEXT = b"exchange/envelope/v1/ciphertext"
L_SIGNING = b"exchange/envelope/v1/signing-digest"
L_ROOT = b"exchange/envelope/v1/batch-root"
L_COMMIT = b"exchange/envelope/v1/commitment"
L_WRAP_INFO = b"exchange/envelope/v1/dek-wrap"


@dataclass(frozen=True)
class BatchSeal:
    """The signature part: one signature set over a batch root, plus this leaf's path."""

    batch_size: int
    leaf_index: int
    path: tuple[bytes, ...]
    signatures: tuple[bytes, ...]


@dataclass(frozen=True)
class RawEnvelope:
    """A decoded but *unverified* envelope. Nothing in it may be trusted or acted on."""

    header_bytes: bytes
    wraps: tuple[bytes, ...]
    ciphertext: bytes
    seal: BatchSeal


def _bytes_list(w: Writer, items: tuple[bytes, ...]) -> None:
    w.array_start(len(items))
    for item in items:
        w.bytes_(item)
    w.array_end(len(items))


def encode_wraps(wraps: tuple[bytes, ...]) -> bytes:
    """The Avro array encoding of the wraps, as hashed into the signing digest."""
    w = Writer()
    _bytes_list(w, wraps)
    return w.getvalue()


def encode_envelope(env: RawEnvelope) -> bytes:
    """Frame and encode an envelope canonically."""
    w = Writer().bytes_(env.header_bytes)
    _bytes_list(w, env.wraps)
    w.bytes_(env.ciphertext)
    w.long(env.seal.batch_size).long(env.seal.leaf_index)
    _bytes_list(w, env.seal.path)
    _bytes_list(w, env.seal.signatures)
    return MAGIC + bytes([WIRE_VERSION]) + w.getvalue()


def _read_bytes_list(r: Reader, max_items: int, max_len: int) -> tuple[bytes, ...]:
    n = r.array_count(max_items)
    items = tuple(r.bytes_(max_len) for _ in range(n))
    r.array_end(n)
    return items


class UnknownWireVersionError(AvroFormatError):
    """The magic is right but the version byte is not one we implement."""


def decode_envelope(data: bytes) -> RawEnvelope:
    """Check size, magic and version, then decode with every length bounded.

    Raises:
        AvroFormatError: oversized (``.oversized``), malformed or non-canonical;
            :class:`UnknownWireVersionError` for a version other than 1.
    """
    if len(data) > MAX_ENVELOPE:
        raise AvroFormatError("envelope too large", oversized=True)
    if len(data) < 3 or data[:2] != MAGIC:
        raise AvroFormatError("bad magic")
    if data[2] != WIRE_VERSION:
        raise UnknownWireVersionError("unknown wire version")
    r = Reader(data[3:])
    header = r.bytes_(MAX_HEADER)
    wraps = _read_bytes_list(r, MAX_RECIPIENTS, MAX_WRAP)
    ciphertext = r.bytes_(MAX_ENVELOPE)
    batch_size = r.bounded_long(1, MAX_BATCH)
    leaf_index = r.bounded_long(0, batch_size - 1)
    path = _read_bytes_list(r, MAX_PATH, 48)
    signatures = _read_bytes_list(r, MAX_SIGNATURES, MAX_SIGNATURE)
    r.done()
    return RawEnvelope(
        header, wraps, ciphertext, BatchSeal(batch_size, leaf_index, path, signatures)
    )


def aad(suite: SuiteId, header_bytes: bytes) -> bytes:
    """AEAD associated data = H(header): the ciphertext only decrypts under *this* header."""
    return hazmat.digest(suite, L_HEADER, header_bytes)


def signing_digest(
    suite: SuiteId, header_bytes: bytes, wraps: tuple[bytes, ...], ct: bytes
) -> bytes:
    """``H(L_SIGNING || H(header) || H(wraps) || H(ciphertext))``, the Merkle leaf data."""
    return hazmat.digest(
        suite,
        L_SIGNING,
        aad(suite, header_bytes),
        hazmat.digest(suite, L_WRAPS, encode_wraps(wraps)),
        hazmat.digest(suite, L_CIPHERTEXT, ct),
    )


def root_message(suite: SuiteId, batch_size: int, root: bytes) -> bytes:
    """The bytes actually signed: label, suite, batch size (fixes the tree shape), root."""
    return L_ROOT + b"\x00" + hazmat.lp(suite.value.encode()) + batch_size.to_bytes(8, "big") + root


def commitment(suite: SuiteId, salt: bytes, plaintext: bytes) -> bytes:
    """Salted plaintext commitment ``H(L_COMMIT || salt || avro_bytes)``."""
    return hazmat.digest(suite, L_COMMIT, salt, plaintext)


def wrap_info(suite: SuiteId, sender: str, recipient: KeyRef, epoch_id: bytes) -> bytes:
    """HPKE ``info`` (RFC 9180 §5.1) binding sender, recipient key, suite and DEK epoch."""
    return (
        L_WRAP_INFO
        + b"\x00"
        + hazmat.lp(suite.value.encode())
        + hazmat.lp(sender.encode())
        + hazmat.lp(recipient.agency_id.encode())
        + hazmat.lp(recipient.key_id.encode())
        + epoch_id
    )


def header_suite_ok(header: EnvelopeHeader, env: RawEnvelope) -> bool:
    """Structural agreement between header and body (counts and lengths for the suite)."""
    info = suite_info(header.suite)
    return (
        len(env.wraps) == len(header.recipients)
        and all(len(w) == info.wrap_length for w in env.wraps)
        and len(env.seal.signatures) == len(info.signatures)
        and all(
            alg.min_length <= len(sig) <= alg.max_length
            for alg, sig in zip(info.signatures, env.seal.signatures, strict=True)
        )
        and all(len(p) == info.digest_size for p in env.seal.path)
        and len(env.ciphertext) >= 16 + 32
    )
