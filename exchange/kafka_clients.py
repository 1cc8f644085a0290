"""Kafka client configuration and error mapping, shared by producers and consumers.

Safe defaults are fixed here once (idempotent producers with ``acks=all``, consumers that
commit only explicitly). Callers may pass librdkafka settings through, but not ones that would
weaken delivery guarantees: those raise :class:`~exchange.errors.ConfigurationError`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from exchange.errors import BrokerError, ConfigurationError

__all__ = [
    "HEADER_RECORD_TYPE",
    "HEADER_SCHEMA_FINGERPRINT",
    "HEADER_SENDER",
    "broker_error",
    "connection_settings",
    "consumer_config",
    "producer_config",
]

#: Kafka header naming the record type. A routing hint only: consumers trust the signed value.
HEADER_RECORD_TYPE = "exchange-record-type"
#: Kafka header naming the signing agency. A routing hint only: the signed header decides.
HEADER_SENDER = "exchange-sender"
#: Kafka header carrying the writer schema's SHA-256 fingerprint (32 raw bytes).
HEADER_SCHEMA_FINGERPRINT = "exchange-schema-fp"

#: librdkafka's own log lines go through Python logging (not straight to stderr), so
#: operators see one log format and tests can capture them.
KAFKA_LOGGER = logging.getLogger("exchange.kafka")

# Settings that carry our delivery guarantees; an override would silently break them.
_PINNED_PRODUCER_KEYS = frozenset({"enable.idempotence", "acks", "bootstrap.servers"})
_PINNED_CONSUMER_KEYS = frozenset(
    {"enable.auto.commit", "enable.auto.offset.store", "isolation.level", "bootstrap.servers"}
)


def _merge(
    base: dict[str, Any], overrides: Mapping[str, Any] | None, pinned: frozenset[str]
) -> dict[str, Any]:
    if overrides:
        clash = sorted(pinned.intersection(overrides))
        if clash:
            raise ConfigurationError(
                f"Kafka setting(s) {', '.join(clash)} cannot be overridden: "
                "they carry the exchange's delivery guarantees"
            )
        base.update(overrides)
    return base


def producer_config(
    bootstrap: str,
    *,
    client_id: str,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """librdkafka settings for an idempotent, fully acknowledged producer.

    Args:
        bootstrap: ``host:port[,host:port...]``.
        client_id: shows up in broker logs and quotas; use the agency id.
        overrides: extra librdkafka settings (for example ``linger.ms``, security settings).

    Raises:
        ConfigurationError: an override touches a pinned delivery-guarantee setting.
    """
    base: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "logger": KAFKA_LOGGER,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "zstd",
        # Long enough to ride out a leader election on a three-node cluster.
        "delivery.timeout.ms": 120_000,
    }
    return _merge(base, overrides, _PINNED_PRODUCER_KEYS)


def consumer_config(
    bootstrap: str,
    *,
    group_id: str,
    client_id: str,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """librdkafka settings for a consumer that commits only after records are safely stored.

    Raises:
        ConfigurationError: an override touches a pinned delivery-guarantee setting.
    """
    base: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "client.id": client_id,
        "logger": KAFKA_LOGGER,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
    }
    return _merge(base, overrides, _PINNED_CONSUMER_KEYS)


def connection_settings(overrides: Mapping[str, Any]) -> dict[str, str]:
    """The overrides that say how to reach the cluster (TLS, SASL), for every client of an
    agency (admin, quarantine and receipt producers) and never its tuning."""
    prefixes = ("security.", "ssl.", "sasl.")
    return {k: str(v) for k, v in overrides.items() if k.startswith(prefixes)}


def broker_error(action: str, error: KafkaError | KafkaException | BaseException) -> BrokerError:
    """Map a confluent-kafka error to a :class:`BrokerError` that says what failed.

    Retriability follows librdkafka's own judgement when it gives one.
    """
    kafka_error = error.args[0] if isinstance(error, KafkaException) and error.args else error
    if isinstance(kafka_error, KafkaError):
        exc = BrokerError(f"{action} failed: {kafka_error.str()} ({kafka_error.name()})")
        exc.retriable = bool(kafka_error.retriable())
        return exc
    return BrokerError(f"{action} failed: {error}")
