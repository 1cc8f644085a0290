"""C2SP signed-note: text plus ``— <name> <base64(key hash || signature)>`` lines.

Checkpoints, cosignatures and receipts are all signed notes (docs/audit.md, "Signed notes").
Only Ed25519 is used (signed-note's standard algorithm, 0x01, and tlog-cosignature's 0x04).

Key names. An agency key generation is named ``exchange.bus/key/<agency id>/<key id>``; a
verifier reads the agency and key id from the name and asks the
:class:`~exchange.crypto.keys.TrustResolver` for that generation, so the trust store stays the
only source of keys. The Ed25519 key is the one of the agency's ``classic`` generation, used
through :meth:`KeyProvider.sign <exchange.crypto.keys.KeyProvider.sign>` (which returns exactly
one Ed25519 signature for a classic generation) — see docs/decisions/0005-audit-log.md.

Key hash (signed-note, "Signatures"): ``SHA-256(name || 0x0A || alg || public key)[:4]``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from exchange.audit.entry import KEY_ID_RE
from exchange.audit.errors import AuditFormatError
from exchange.crypto.keys import KeyProvider, SuiteId, TrustResolver
from exchange.errors import ExchangeError
from exchange.identifiers import AGENCY_ID_PATTERN

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "MAX_NOTE_BYTES",
    "AgencyNoteSigner",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "key_hash",
    "key_name",
    "parse_key_name",
    "resolve_key",
    "sign_note",
    "verify_ed25519",
]

#: signed-note algorithm byte of Ed25519 signatures.
ALG_ED25519: Final = 0x01
#: C2SP tlog-cosignature algorithm byte of ``cosignature/v1`` (Ed25519 with a timestamp).
ALG_COSIGNATURE_V1: Final = 0x04
#: Bound on a whole note (text and signatures); C2SP allows 100 signatures, we allow 16.
MAX_NOTE_BYTES: Final = 16 * 1024
MAX_SIGNATURES: Final = 16
_KEY_PREFIX: Final = "exchange.bus/key/"
_NAME_RE: Final = re.compile(
    rf"\A{re.escape(_KEY_PREFIX)}({AGENCY_ID_PATTERN})/([A-Za-z0-9._-]{{1,64}})\Z"
)
_ANY_NAME_RE: Final = re.compile(r"\A[\x21-\x2a\x2c-\x7e]{1,256}\Z")  # no space, no '+'
_TEXT_RE: Final = re.compile(r"\A(?:[\x20-\x7e]+\n)+\Z")  # printable ASCII lines, none empty
_DASH: Final = "\u2014"  # signed-note: signature lines start with U+2014 EM DASH and a space


def key_name(agency_id: str, key_id: str) -> str:
    """The signed-note key name of an agency key generation.

    Raises:
        ValueError: the agency id or key id is outside its syntax.
    """
    name = f"{_KEY_PREFIX}{agency_id}/{key_id}"
    if not _NAME_RE.match(name) or not KEY_ID_RE.match(key_id):
        raise ValueError(f"got {agency_id!r}/{key_id!r}, expected an agency id and a key id")
    return name


def parse_key_name(name: str) -> tuple[str, str] | None:
    """``(agency id, key id)`` from a key name of ours, or ``None`` for any other name."""
    m = _NAME_RE.match(name)
    return (m.group(1), m.group(2)) if m else None


def key_hash(name: str, public_key: ed25519.Ed25519PublicKey, alg: int = ALG_ED25519) -> bytes:
    """signed-note key hash: ``SHA-256(name || 0x0A || alg || raw public key)[:4]``."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + raw).digest()[:4]


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key hash and the algorithm's signature bytes."""

    name: str
    key_hash: bytes
    signature: bytes

    def line(self) -> str:
        blob = base64.b64encode(self.key_hash + self.signature).decode()
        return f"{_DASH} {self.name} {blob}\n"


@dataclass(frozen=True)
class Note:
    """A signed note: ``text`` (non-empty lines, each ending in ``\\n``) and its signatures."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> bytes:
        """``text || "\\n" || signature lines`` (signed-note "Format")."""
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()

    def with_signature(self, sig: NoteSignature) -> Note:
        """This note with ``sig`` added, unless an identical line is already there."""
        if sig in self.signatures:
            return self
        return Note(self.text, (*self.signatures, sig))

    @classmethod
    def parse(cls, data: bytes) -> Note:
        """Parse a note; only the exact format (and at least one signature) is accepted.

        Raises:
            AuditFormatError: oversized, not UTF-8, or not the signed-note grammar.
        """
        if len(data) > MAX_NOTE_BYTES:
            raise AuditFormatError(f"note of {len(data)} bytes exceeds {MAX_NOTE_BYTES}")
        try:
            s = data.decode("utf-8")
        except UnicodeDecodeError:
            raise AuditFormatError("note is not UTF-8") from None
        split = s.rfind("\n\n")  # signed-note: the text ends at the last blank line
        if split < 0 or not s.endswith("\n"):
            raise AuditFormatError("note has no signature block")
        text, block = s[: split + 1], s[split + 2 :]
        if not _TEXT_RE.match(text):
            raise AuditFormatError("note text must be printable ASCII lines")
        lines = block.split("\n")[:-1]
        if not 1 <= len(lines) <= MAX_SIGNATURES:
            raise AuditFormatError(f"note needs 1..{MAX_SIGNATURES} signature lines")
        return cls(text, tuple(_parse_line(line) for line in lines))


def _parse_line(line: str) -> NoteSignature:
    parts = line.split(" ")
    if len(parts) != 3 or parts[0] != _DASH or not _ANY_NAME_RE.match(parts[1]):
        raise AuditFormatError("malformed note signature line")
    try:
        blob = base64.b64decode(parts[2], validate=True)
    except (binascii.Error, ValueError):
        raise AuditFormatError("note signature is not base64") from None
    if len(blob) < 5 or base64.b64encode(blob).decode() != parts[2]:
        raise AuditFormatError("note signature is too short or not canonical base64")
    return NoteSignature(parts[1], blob[:4], blob[4:])


class NoteSigner(Protocol):
    """Something that signs notes under one key name with one Ed25519 key."""

    @property
    def name(self) -> str: ...

    @property
    def public_key(self) -> ed25519.Ed25519PublicKey: ...

    def sign(self, message: bytes) -> bytes:
        """A raw 64-byte Ed25519 signature over ``message``."""
        ...


class AgencyNoteSigner:
    """Signs with the Ed25519 key of an agency's ``classic`` generation via its KeyProvider.

    Args:
        provider: the agency's key provider (private keys never leave it).
        at: pick the generation valid at this time.

    Raises:
        PolicyError: the agency holds no classic generation valid at ``at``.
    """

    def __init__(self, provider: KeyProvider, *, at: datetime) -> None:
        key = provider.current_key(SuiteId.CLASSIC, at=at)
        pub = key.signing_keys[0]
        if not isinstance(pub, ed25519.Ed25519PublicKey):  # classic is Ed25519 (pki table)
            raise TypeError("a classic generation must hold an Ed25519 signing key")
        self._provider = provider
        self._key_id = key.key_id
        self._public = pub
        self._name = key_name(provider.agency_id, key.key_id)

    def __repr__(self) -> str:
        return f"AgencyNoteSigner({self._name!r})"

    @property
    def agency_id(self) -> str:
        return self._provider.agency_id

    @property
    def name(self) -> str:
        return self._name

    @property
    def public_key(self) -> ed25519.Ed25519PublicKey:
        return self._public

    def sign(self, message: bytes) -> bytes:
        (signature,) = self._provider.sign(self._key_id, message)  # one key in classic
        return signature


def sign_note(text: str, signer: NoteSigner) -> Note:
    """Sign ``text`` as a signed note with one Ed25519 (0x01) signature.

    Raises:
        ValueError: ``text`` is not non-empty printable ASCII lines each ending in ``\\n``.
    """
    if not _TEXT_RE.match(text) or len(text) > MAX_NOTE_BYTES // 2:
        raise ValueError("note text must be printable ASCII lines, each ending in a newline")
    name = signer.name
    sig = NoteSignature(name, key_hash(name, signer.public_key), signer.sign(text.encode()))
    return Note(text, (sig,))


def resolve_key(
    name: str, trust: TrustResolver, *, at: datetime
) -> tuple[str, ed25519.Ed25519PublicKey] | None:
    """The agency and Ed25519 key a key name stands for, if the trust store vouches for it.

    Args:
        name: a signature line's key name.
        trust: the trust store.
        at: the signing time the key must be valid (and unrevoked) at.

    Returns:
        ``(agency id, public key)``, or ``None`` for a foreign name, an unknown, revoked or
        expired key, or a key that is not a classic Ed25519 generation.
    """
    parsed = parse_key_name(name)
    if parsed is None:
        return None
    try:
        key = trust.signing_key(parsed[0], parsed[1], at=at)
    except ExchangeError:
        return None
    pub = key.signing_keys[0] if key.signing_keys else None
    if key.suite is not SuiteId.CLASSIC or not isinstance(pub, ed25519.Ed25519PublicKey):
        return None
    return parsed[0], pub


def verify_ed25519(public_key: ed25519.Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """Whether a raw Ed25519 signature verifies; never raises."""
    if len(signature) != 64:
        return False
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
