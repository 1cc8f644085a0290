"""Private keys at rest: encrypted PKCS#8 files unlocked by one stretched passphrase.

Every private key is its own PKCS#8 ``ENCRYPTED PRIVATE KEY`` PEM file (PBES2: PBKDF2-HMAC-
SHA256 + AES-256-CBC, what ``BestAvailableEncryption`` writes; ``cryptography`` 50 encrypts
Ed25519, ML-DSA-65, P-384, X25519 and ML-KEM-768 keys this way, so no key type needs a special
format). ``BestAvailableEncryption`` uses only 2048 PBKDF2 iterations, too few against offline
guessing, so the passphrase is first stretched once per key store with scrypt (salt and cost in
``private/keystore.json``) and the 64-hex-digit result is the PKCS#8 password. Each file stays
readable by ``openssl pkcs8`` given that derived password (docs/pki.md "Recovering a key").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NoReturn

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.hpke import MLKEM768X25519PrivateKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from exchange.crypto.keys import SuiteId
from exchange.crypto.pki.algorithms import SigningPrivateKey, signing_algorithms
from exchange.crypto.pki.certificates import AgencyPublicKeys, public_keys_for
from exchange.crypto.pki.layout import PkiLayout, write_private
from exchange.crypto.pki.passphrase import Passphrase
from exchange.errors import ConfigurationError

__all__ = [
    "DEFAULT_SCRYPT_LOG2_N",
    "AgencyPrivateKeys",
    "KemPrivateKey",
    "UnlockedKeystore",
    "generate_agency_keys",
    "load_agency_keys",
    "store_agency_keys",
    "unlock",
]

KemPrivateKey = x25519.X25519PrivateKey | MLKEM768X25519PrivateKey | ec.EllipticCurvePrivateKey
#: What is stored per KEM file: the pq-hybrid KEM key is kept as its two halves.
KemPartPrivateKey = x25519.X25519PrivateKey | mlkem.MLKEM768PrivateKey | ec.EllipticCurvePrivateKey
StoredPrivateKey = SigningPrivateKey | KemPartPrivateKey

#: scrypt N = 2**16, r = 8, p = 1: 64 MiB and roughly 0.2 s once per process.
DEFAULT_SCRYPT_LOG2_N: Final = 16
_MIN_LOG2_N: Final = 10  # tests go this low; anything lower is refused
_MAX_LOG2_N: Final = 20  # a tampered keystore.json must not make us allocate gigabytes
_CHECK_LABEL: Final = b"exchange/keystore-check/v1"
_KEM_ROLES: Final = {
    SuiteId.CLASSIC: ("x25519",),
    SuiteId.PQ_HYBRID: ("mlkem768", "x25519"),
    SuiteId.CNSA: ("p384",),
}


class UnlockedKeystore:
    """The scrypt-derived PKCS#8 password of one key store. Redacted like a passphrase."""

    __slots__ = ("_password",)

    def __init__(self, password: bytes) -> None:
        self._password = password

    def __repr__(self) -> str:
        return "UnlockedKeystore(<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("UnlockedKeystore cannot be pickled")

    def encrypt(self, key: StoredPrivateKey) -> bytes:
        """PEM of ``key`` as encrypted PKCS#8."""
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._password),
        )

    def decrypt(self, path: Path) -> PrivateKeyTypes:
        """Load the encrypted PKCS#8 key at ``path``.

        Raises:
            ConfigurationError: missing file, wrong passphrase or corrupt file (the message
                names the path, never the passphrase).
        """
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read private key {path}: {exc.strerror}") from None
        try:
            return serialization.load_pem_private_key(data, self._password)
        except (ValueError, TypeError):
            raise ConfigurationError(
                f"cannot decrypt private key {path}: wrong passphrase or corrupt file; check "
                "EXCHANGE_PKI_PASSPHRASE_FILE / EXCHANGE_PKI_PASSPHRASE"
            ) from None


def unlock(
    layout: PkiLayout, passphrase: Passphrase, *, create_log2_n: int | None = None
) -> UnlockedKeystore:
    """Stretch ``passphrase`` with the key store's scrypt parameters.

    Args:
        layout: the PKI layout.
        passphrase: the key store passphrase.
        create_log2_n: create ``keystore.json`` with this scrypt cost if it does not exist yet
            (``None``: the key store must exist).

    Returns:
        The unlocked key store.

    Raises:
        ConfigurationError: no key store, a corrupt ``keystore.json``, or the passphrase does
            not match the key store.
    """
    path = layout.keystore_params
    if not path.exists():
        if create_log2_n is None:
            raise ConfigurationError(
                f"no key store at {layout.private_dir}; run `exchange pki init-country` first"
            )
        _create_params(path, create_log2_n, passphrase)
    try:
        params = json.loads(path.read_text(encoding="utf-8"))
        salt = base64.b64decode(params["salt"], validate=True)
        log2_n = int(params["log2_n"])
        check = bytes.fromhex(params["check"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigurationError(
            f"key store parameters {path} are corrupt; restore them from backup"
        ) from None
    if not _MIN_LOG2_N <= log2_n <= _MAX_LOG2_N or len(salt) < 16:
        raise ConfigurationError(
            f"key store parameters {path} are out of bounds; restore them from backup"
        )
    derived = _stretch(passphrase, salt, log2_n)
    if not hmac.compare_digest(_check_value(derived), check):
        raise ConfigurationError(
            f"the passphrase does not unlock the key store {layout.private_dir}; check "
            "EXCHANGE_PKI_PASSPHRASE_FILE / EXCHANGE_PKI_PASSPHRASE"
        )
    return UnlockedKeystore(derived.hex().encode("ascii"))


def _stretch(passphrase: Passphrase, salt: bytes, log2_n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=2**log2_n, r=8, p=1).derive(passphrase.reveal())


def _check_value(derived: bytes) -> bytes:
    # Lets us say "wrong passphrase" before touching any key file. It costs an attacker the
    # same scrypt work per guess as the key files themselves do, so it leaks nothing extra.
    return hmac.new(derived, _CHECK_LABEL, hashlib.sha256).digest()[:16]


def _create_params(path: Path, log2_n: int, passphrase: Passphrase) -> None:
    if not _MIN_LOG2_N <= log2_n <= _MAX_LOG2_N:
        raise ValueError(f"got scrypt log2_n={log2_n}, expected {_MIN_LOG2_N}..{_MAX_LOG2_N}")
    salt = os.urandom(16)
    params = {
        "version": 1,
        "kdf": "scrypt",
        "log2_n": log2_n,
        "r": 8,
        "p": 1,
        "salt": base64.b64encode(salt).decode("ascii"),
        "check": _check_value(_stretch(passphrase, salt, log2_n)).hex(),
    }
    write_private(path, (json.dumps(params, indent=2) + "\n").encode("utf-8"))


@dataclass(frozen=True, repr=False)
class AgencyPrivateKeys:
    """The private keys of one generation: signing keys in suite order and the KEM key."""

    suite: SuiteId
    signing: tuple[SigningPrivateKey, ...]
    kem_parts: tuple[KemPartPrivateKey, ...]  # (X25519,) | (ML-KEM-768, X25519) | (P-384,)

    def __repr__(self) -> str:
        return f"AgencyPrivateKeys(suite={self.suite.value!r}, <redacted>)"

    @property
    def kem(self) -> KemPrivateKey:
        """The HPKE recipient private key."""
        if self.suite is SuiteId.PQ_HYBRID:
            mlkem_key, x_key = self.kem_parts
            if not isinstance(mlkem_key, mlkem.MLKEM768PrivateKey) or not isinstance(
                x_key, x25519.X25519PrivateKey
            ):
                raise TypeError("pq-hybrid KEM parts must be (ML-KEM-768, X25519)")
            return MLKEM768X25519PrivateKey(mlkem_key, x_key)
        (only,) = self.kem_parts
        if not isinstance(only, x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise TypeError(f"unexpected KEM key type {type(only).__name__}")
        return only

    def public(self) -> AgencyPublicKeys:
        """The matching public keys (and thereby the key id)."""
        return public_keys_for(
            self.suite,
            [k.public_key() for k in self.signing],
            [k.public_key() for k in self.kem_parts],
        )


def generate_agency_keys(suite: SuiteId) -> AgencyPrivateKeys:
    """Fresh keys for one generation of ``suite`` (signing and KEM keys are always distinct)."""
    suite = SuiteId(suite)
    signing = [_new_signing_key(name) for name in signing_algorithms(suite)]
    kem_parts: list[KemPartPrivateKey] = []
    for role in _KEM_ROLES[suite]:
        if role == "x25519":
            kem_parts.append(x25519.X25519PrivateKey.generate())
        elif role == "mlkem768":
            kem_parts.append(mlkem.MLKEM768PrivateKey.generate())
        else:
            kem_parts.append(ec.generate_private_key(ec.SECP384R1()))
    return AgencyPrivateKeys(suite=suite, signing=tuple(signing), kem_parts=tuple(kem_parts))


def as_signing_key(key: PrivateKeyTypes) -> SigningPrivateKey:
    """Narrow a loaded key to our signing types (a wrong type fails the key-id check later)."""
    if isinstance(
        key, ed25519.Ed25519PrivateKey | mldsa.MLDSA65PrivateKey | ec.EllipticCurvePrivateKey
    ):
        return key
    raise ConfigurationError(
        f"a signing key file holds a {type(key).__name__}; restore it from backup"
    )


def _as_kem_part(key: PrivateKeyTypes) -> KemPartPrivateKey:
    if isinstance(
        key, x25519.X25519PrivateKey | mlkem.MLKEM768PrivateKey | ec.EllipticCurvePrivateKey
    ):
        return key
    raise ConfigurationError(f"a KEM key file holds a {type(key).__name__}; restore it from backup")


def _new_signing_key(name: str) -> SigningPrivateKey:
    if name == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if name == "mldsa65":
        return mldsa.MLDSA65PrivateKey.generate()
    return ec.generate_private_key(ec.SECP384R1())


def _roles(suite: SuiteId) -> tuple[list[str], list[str]]:
    return (
        [f"sign-{name}" for name in signing_algorithms(suite)],
        [f"kem-{name}" for name in _KEM_ROLES[suite]],
    )


def store_agency_keys(
    layout: PkiLayout, agency_id: str, keys: AgencyPrivateKeys, keystore: UnlockedKeystore
) -> Path:
    """Write a generation's private keys (0600 files in a 0700 directory); never overwrites.

    Returns:
        The directory holding the key files.
    """
    directory = layout.agency_key_dir(agency_id, keys.suite, keys.public().key_id)
    sign_roles, kem_roles = _roles(keys.suite)
    for role, key in zip([*sign_roles, *kem_roles], [*keys.signing, *keys.kem_parts], strict=True):
        write_private(directory / f"{role}.pem", keystore.encrypt(key))
    return directory


def load_agency_keys(
    layout: PkiLayout, agency_id: str, suite: SuiteId, key_id: str, keystore: UnlockedKeystore
) -> AgencyPrivateKeys:
    """Load and check a generation's private keys.

    Raises:
        ConfigurationError: missing or undecryptable files, or keys that do not match ``key_id``.
    """
    suite = SuiteId(suite)
    directory = layout.agency_key_dir(agency_id, suite, key_id)
    sign_roles, kem_roles = _roles(suite)
    signing = tuple(as_signing_key(keystore.decrypt(directory / f"{r}.pem")) for r in sign_roles)
    kem_parts = tuple(_as_kem_part(keystore.decrypt(directory / f"{r}.pem")) for r in kem_roles)
    keys = AgencyPrivateKeys(suite=suite, signing=signing, kem_parts=kem_parts)
    try:
        matches = keys.public().key_id == key_id
    except (TypeError, ValueError):
        matches = False
    if not matches:
        raise ConfigurationError(
            f"private keys under {directory} do not match key id {key_id}; restore them from backup"
        )
    return keys
