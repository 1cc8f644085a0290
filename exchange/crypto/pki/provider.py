"""``FileKeyProvider``: the :class:`~exchange.crypto.keys.KeyProvider` over encrypted key files.

Example::

    provider = FileKeyProvider.from_home(home, "MEX-FGR", passphrase)
    key = provider.current_key(SuiteId.PQ_HYBRID, at=now)
    signatures = provider.sign(key.key_id, digest)          # (ed25519_sig, mldsa65_sig)
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

from exchange.crypto.keys import AgencyKey, SuiteId, TrustResolver
from exchange.crypto.pki.algorithms import hpke_suite, sign_with
from exchange.crypto.pki.keystore import (
    AgencyPrivateKeys,
    UnlockedKeystore,
    load_agency_keys,
    unlock,
)
from exchange.crypto.pki.layout import AGENCY_ID_RE, KEY_ID_RE, PkiLayout
from exchange.crypto.pki.passphrase import Passphrase
from exchange.crypto.pki.truststore import TrustStore
from exchange.errors import ConfigurationError, IntegrityError, IntegrityReason

__all__ = ["FileKeyProvider"]

_log = logging.getLogger(__name__)


class FileKeyProvider:
    """Private-key operations of one agency, from ``$EXCHANGE_HOME/pki/private``.

    The passphrase is stretched on first use and the decrypted keys of each generation are
    cached in memory for the life of the provider. Key generations are found through the
    trust store, so the provider only uses keys whose certificates verify.

    Args:
        layout: the PKI layout of the home that holds the keys.
        agency_id: the agency whose keys this provider uses.
        passphrase: the key store passphrase.
        trust: the resolver that vouches for this agency's certificates.

    Raises:
        ValueError: malformed ``agency_id``.
    """

    def __init__(
        self, layout: PkiLayout, agency_id: str, passphrase: Passphrase, *, trust: TrustResolver
    ) -> None:
        if not AGENCY_ID_RE.match(agency_id):
            raise ValueError(f"got agency id {agency_id!r}, expected <MEX|USA>-<AGENCY>")
        self._layout = layout
        self._agency_id = agency_id
        self._passphrase = passphrase
        self._trust = trust
        self._keystore: UnlockedKeystore | None = None
        self._keys: dict[str, AgencyPrivateKeys] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_home(cls, home: Path, agency_id: str, passphrase: Passphrase) -> FileKeyProvider:
        """A provider whose trust store is loaded from the same ``$EXCHANGE_HOME``."""
        layout = PkiLayout(home)
        return cls(layout, agency_id, passphrase, trust=TrustStore.from_directory(layout.trust_dir))

    def __repr__(self) -> str:
        return f"FileKeyProvider(agency_id={self._agency_id!r}, home={str(self._layout.home)!r})"

    @property
    def agency_id(self) -> str:
        return self._agency_id

    def current_key(self, suite: SuiteId, *, at: dt.datetime) -> AgencyKey:
        """This agency's newest generation for ``suite`` valid at ``at``.

        Raises:
            PolicyError: no valid generation for ``suite`` (enroll or rotate).
        """
        return self._trust.current_key(self._agency_id, suite, at=at)

    def _private(self, key_id: str) -> AgencyPrivateKeys:
        with self._lock:
            cached = self._keys.get(key_id)
            if cached is not None:
                return cached
            suite = self._held_suite(key_id)
            if suite is None:
                raise ConfigurationError(
                    f"no private keys for {self._agency_id} key {key_id!r} under "
                    f"{self._layout.private_dir}; run `exchange pki enroll` or `exchange pki "
                    "rotate` on the host that holds them"
                )
            if self._keystore is None:
                self._keystore = unlock(self._layout, self._passphrase)
            keys = load_agency_keys(self._layout, self._agency_id, suite, key_id, self._keystore)
            self._keys[key_id] = keys
            return keys

    def _held_suite(self, key_id: str) -> SuiteId | None:
        # The key directory tells the suite. The trust store is not consulted, so an expired
        # generation can still open old wraps addressed to it.
        if not KEY_ID_RE.match(key_id):
            return None
        base = self._layout.private_dir / "agencies" / self._agency_id
        for suite in SuiteId:
            if (base / suite.value / key_id).is_dir():
                return suite
        return None

    def sign(self, key_id: str, message: bytes) -> tuple[bytes, ...]:
        """Sign ``message`` with every signing key of generation ``key_id``, in suite order.

        Args:
            key_id: the generation (from :meth:`current_key`).
            message: the bytes to sign.

        Returns:
            Ed25519 (raw) for classic; Ed25519 then ML-DSA-65 for pq-hybrid; ECDSA P-384 with
            SHA-384 (DER) for cnsa.

        Raises:
            ConfigurationError: no such generation here, or the key store cannot be unlocked.
        """
        return sign_with(self._private(key_id).signing, message)

    def hpke_open(self, key_id: str, sealed: bytes, *, info: bytes) -> bytes:
        """Open an HPKE single-shot ciphertext (``enc || ct``) addressed to ``key_id``.

        Args:
            key_id: the recipient generation named in the envelope.
            sealed: ``enc || ct`` as written by ``hpke_suite(suite).encrypt``.
            info: the HPKE info the sender bound (sender, key id, suite, epoch).

        Returns:
            The plaintext (a DEK).

        Raises:
            IntegrityError: ``BAD_KEY_WRAP`` for any failure that the message could cause:
                unknown or malformed key id, wrong recipient, tampered ``enc`` or ciphertext.
            ConfigurationError: the key store cannot be unlocked (wrong passphrase, missing
                key files). Deliberately not an integrity error: a local misconfiguration
                must alert the operator, not quarantine every valid message as hostile.
        """
        if self._held_suite(key_id) is None:
            # Not a generation we hold (or not a key id at all): the wrap is not for us.
            raise IntegrityError(IntegrityReason.BAD_KEY_WRAP)
        keys = self._private(key_id)
        try:
            return hpke_suite(keys.suite).decrypt(sealed, keys.kem, info=info)
        except Exception:  # noqa: BLE001 - every HPKE failure is the same opaque error
            _log.debug("hpke_open failed for key %s", key_id)
            raise IntegrityError(IntegrityReason.BAD_KEY_WRAP) from None
