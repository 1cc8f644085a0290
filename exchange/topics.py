"""Create and inspect Kafka topics through the AdminClient."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # typed here; admin re-exports it untyped

from exchange.errors import BrokerError
from exchange.kafka_clients import KAFKA_LOGGER, broker_error

__all__ = ["TopicSpec", "ensure_topics"]


@dataclass(frozen=True)
class TopicSpec:
    """A topic and how it must be configured.

    Attributes:
        name: topic name.
        partitions: partition count.
        replication_factor: ``-1`` takes the broker's ``default.replication.factor``.
        config: topic-level settings such as ``retention.ms`` or ``cleanup.policy``.
    """

    name: str
    partitions: int = 3
    replication_factor: int = -1
    config: Mapping[str, str] = field(default_factory=dict)


def ensure_topics(
    bootstrap: str,
    specs: Iterable[TopicSpec],
    *,
    admin_config: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> list[str]:
    """Create every topic in ``specs`` that does not exist yet; return the names created.

    Existing topics are left as they are (their configuration is not changed here).

    Raises:
        BrokerError: the broker refused a topic or did not answer within ``timeout``.
    """
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": KAFKA_LOGGER}
    admin = AdminClient({**config, **(admin_config or {})})
    wanted = {spec.name: spec for spec in specs}
    if not wanted:
        return []
    new_topics = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=spec.replication_factor,
            config=dict(spec.config),
        )
        for spec in wanted.values()
    ]
    futures = admin.create_topics(new_topics, operation_timeout=timeout, request_timeout=timeout)
    created: list[str] = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            created.append(name)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise broker_error(f"create topic {name}", exc) from exc
        except TimeoutError as exc:
            raise BrokerError(f"create topic {name}: no answer within {timeout:.0f} s") from exc
    _wait_until_served(admin, {name: wanted[name].partitions for name in created}, timeout)
    return sorted(created)


def _wait_until_served(admin: AdminClient, partitions: Mapping[str, int], timeout: float) -> None:
    """Return once the broker's metadata shows each new topic with all its partitions led.

    A topic is created when the controller commits it; brokers learn of it a little later.
    A producer that asks for the topic in between is told it does not exist, and librdkafka
    then drops its partition objects and, when the topic appears, starts their idempotence
    sequences again at 0. The broker takes the repeated sequences for retries of envelopes it
    already holds, acknowledges them, and discards them (librdkafka #3712). An outbox test
    saw exactly that signature: three envelopes to a new topic's partition acknowledged at
    offset 0, one of them on the log. Producing only to a topic the broker already serves
    closes that window.

    Raises:
        BrokerError: a topic was not served within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    waiting = dict(partitions)
    while waiting:
        metadata: Any = admin.list_topics(timeout=max(0.1, deadline - time.monotonic()))
        for name, count in list(waiting.items()):
            described = metadata.topics.get(name)
            if (
                described is not None
                and described.error is None
                and len(described.partitions) == count
                and all(p.leader >= 0 for p in described.partitions.values())
            ):
                del waiting[name]
        if waiting and time.monotonic() >= deadline:
            raise BrokerError(
                f"created topic {min(waiting)} is not served with all its partitions after "
                f"{timeout:.0f} s"
            )
        if waiting:
            time.sleep(0.05)
