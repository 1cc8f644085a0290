"""Where PKI files live under ``$EXCHANGE_HOME/pki``.

::

    $EXCHANGE_HOME/pki/                      0700
    ├── history.jsonl                        append-only trust changes (no secrets)
    ├── trust/                               PUBLIC trust material: copy it to auditors and peers
    │   ├── roots/<CTY>/<suite>.pem          root CA certificate, one per country and suite family
    │   ├── crls/<CTY>/<suite>.pem           the CRL signed by that root
    │   └── agencies/<AGENCY>/<suite>/<key_id>.pem   one agency certificate per key generation
    └── private/                             0700, never leaves this host
        ├── keystore.json                    scrypt salt and cost (not secret, needed to unlock)
        ├── roots/<CTY>/<suite>.pem          encrypted PKCS#8 root key (0600)
        └── agencies/<AGENCY>/<suite>/<key_id>/<role>.pem   encrypted PKCS#8 (0600)

``<role>`` is ``sign-ed25519``, ``sign-mldsa65``, ``sign-p384``, ``kem-x25519``,
``kem-mlkem768`` or ``kem-p384``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from exchange.crypto.keys import SuiteId
from exchange.identifiers import AGENCY_ID_PATTERN

__all__ = [
    "AGENCY_ID_RE",
    "COUNTRY_RE",
    "KEY_ID_RE",
    "PkiLayout",
    "make_dirs",
    "write_private",
    "write_public",
]

#: ISO 3166 alpha-3 codes of the countries this exchange serves.
COUNTRY_RE: Final = re.compile(r"\A(MEX|USA)\Z")
#: An agency of a country this exchange serves (``exchange.identifiers`` syntax); the
#: syntax also keeps ids safe as path components.
AGENCY_ID_RE: Final = re.compile(rf"\A(?=MEX-|USA-){AGENCY_ID_PATTERN}\Z")
#: 32 lowercase hex digits (see docs/pki.md "Key ids").
KEY_ID_RE: Final = re.compile(r"\A[0-9a-f]{32}\Z")

_DIR_MODE: Final = 0o700
_PRIVATE_MODE: Final = 0o600
_PUBLIC_MODE: Final = 0o644


def _checked(pattern: re.Pattern[str], value: str, what: str) -> str:
    # Every path component that comes from a user is validated, so ids cannot walk the tree.
    if not pattern.match(value):
        raise ValueError(f"got {what} {value!r}, expected to match {pattern.pattern}")
    return value


@dataclass(frozen=True)
class PkiLayout:
    """Paths of the PKI under one home directory. Pure: creates nothing until asked."""

    home: Path

    @property
    def root(self) -> Path:
        return self.home / "pki"

    @property
    def trust_dir(self) -> Path:
        return self.root / "trust"

    @property
    def private_dir(self) -> Path:
        return self.root / "private"

    @property
    def history(self) -> Path:
        return self.root / "history.jsonl"

    @property
    def keystore_params(self) -> Path:
        return self.private_dir / "keystore.json"

    def root_cert(self, country: str, suite: SuiteId) -> Path:
        country = _checked(COUNTRY_RE, country, "country")
        return self.trust_dir / "roots" / country / f"{SuiteId(suite).value}.pem"

    def crl(self, country: str, suite: SuiteId) -> Path:
        country = _checked(COUNTRY_RE, country, "country")
        return self.trust_dir / "crls" / country / f"{SuiteId(suite).value}.pem"

    def root_key(self, country: str, suite: SuiteId) -> Path:
        country = _checked(COUNTRY_RE, country, "country")
        return self.private_dir / "roots" / country / f"{SuiteId(suite).value}.pem"

    def agency_cert(self, agency_id: str, suite: SuiteId, key_id: str) -> Path:
        return (
            self.agency_cert_dir(agency_id, suite) / f"{_checked(KEY_ID_RE, key_id, 'key id')}.pem"
        )

    def agency_cert_dir(self, agency_id: str, suite: SuiteId) -> Path:
        agency_id = _checked(AGENCY_ID_RE, agency_id, "agency id")
        return self.trust_dir / "agencies" / agency_id / SuiteId(suite).value

    def agency_key_dir(self, agency_id: str, suite: SuiteId, key_id: str) -> Path:
        agency_id = _checked(AGENCY_ID_RE, agency_id, "agency id")
        key_id = _checked(KEY_ID_RE, key_id, "key id")
        return self.private_dir / "agencies" / agency_id / SuiteId(suite).value / key_id


def make_dirs(path: Path) -> None:
    """Create ``path`` and every missing parent with mode 0700 (``mkdir -p`` would give the
    parents the umask's mode, often 0755). Existing directories are left as they are."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=_DIR_MODE)
        except FileExistsError:
            continue  # created concurrently; its creator chose the mode
        os.chmod(directory, _DIR_MODE)  # the umask may have narrowed or widened it


def _write_atomic(path: Path, data: bytes, mode: int, *, exclusive: bool) -> None:
    make_dirs(path.parent)
    if exclusive and path.exists():
        raise FileExistsError(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    # O_EXCL + explicit mode: the file is never readable by others, not even for an instant.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)  # umask may have narrowed it; make it exactly `mode`
        if exclusive:
            os.link(tmp, path)  # fails if someone created `path` meanwhile
            tmp.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` (mode 0600, parents 0700) with ``data``; never overwrites.

    Raises:
        FileExistsError: ``path`` exists.
    """
    _write_atomic(path, data, _PRIVATE_MODE, exclusive=True)


def write_public(path: Path, data: bytes, *, replace: bool = False) -> None:
    """Write public trust material (mode 0644, parents 0700), atomically.

    Raises:
        FileExistsError: ``path`` exists and ``replace`` is false.
    """
    _write_atomic(path, data, _PUBLIC_MODE, exclusive=not replace)
