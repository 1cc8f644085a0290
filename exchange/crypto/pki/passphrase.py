"""A passphrase that never shows itself.

Library functions take the key-store passphrase as a :class:`Passphrase`, never as bare
``bytes``: ``repr``/``str``/``format`` print ``Passphrase(<redacted>)``, it cannot be pickled,
and the only way to the bytes is :meth:`Passphrase.reveal`, which is easy to grep for. Python
cannot wipe ``bytes`` from memory; we only keep the secret out of logs, tracebacks and argv.
"""

from __future__ import annotations

import hmac
from typing import Final, NoReturn

__all__ = ["MIN_PASSPHRASE_BYTES", "Passphrase"]

#: Shorter passphrases are refused. Stretching (scrypt) slows guessing; it cannot save "1234".
MIN_PASSPHRASE_BYTES: Final = 12

_REDACTED: Final = "Passphrase(<redacted>)"


class Passphrase:
    """The secret that unlocks the encrypted private keys of one ``$EXCHANGE_HOME``.

    Args:
        value: the passphrase bytes (for example read from ``EXCHANGE_PKI_PASSPHRASE_FILE``).

    Raises:
        TypeError: ``value`` is not ``bytes``.
        ValueError: ``value`` is shorter than :data:`MIN_PASSPHRASE_BYTES` (the message never
            contains the value).
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, bytes):
            raise TypeError(f"got passphrase of type {type(value).__name__}, expected bytes")
        if len(value) < MIN_PASSPHRASE_BYTES:
            raise ValueError(
                f"got a passphrase of {len(value)} bytes, expected at least {MIN_PASSPHRASE_BYTES}"
            )
        self._value = value

    def reveal(self) -> bytes:
        """The passphrase bytes. Call only where the secret is consumed (a KDF)."""
        return self._value

    def __repr__(self) -> str:
        return _REDACTED

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return _REDACTED

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Passphrase):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        # Hashing would turn the secret into a guessable dict key; a passphrase is not a key.
        raise TypeError("Passphrase is unhashable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("Passphrase cannot be pickled")
