"""Secure binational intelligence-exchange bus on Apache Kafka.

Agencies publish signed-and-encrypted records (firearm seizures, trace requests and results,
ballistic evidence, intelligence reports) over Avro-schema topics; counterparts consume only
what is addressed and releasable to them, verified and decrypted; auditors check a
tamper-evident log without reading plaintext.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from exchange.errors import ExchangeError

try:
    __version__ = version("binational-exchange")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = ["ExchangeError", "__version__"]
