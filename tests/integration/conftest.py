"""Fixtures for tests against a real Kafka broker.

The broker comes from, in order:

1. ``EXCHANGE_BOOTSTRAP`` (via :class:`~exchange.settings.ExchangeSettings`), used as is;
2. testcontainers' ``KafkaContainer`` when a Docker engine answers a ping;
3. the project's local jar-based broker (:mod:`exchange.broker`), started once per session
   in a temporary ``EXCHANGE_HOME`` on free ports and stopped at the end. Its jars come from
   the shared cache under the real ``$EXCHANGE_HOME/kafka/libs``, so Maven runs at most once.

A broker that cannot start fails the tests that need it (with the log tail); nothing here
ever skips. Every test in this directory is marked ``integration``. The PostgreSQL fixture
``postgres_dsn`` lives in ``postgres.py`` beside this file and is wired in here.
"""

from __future__ import annotations

import gc
import re
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # typed here; admin re-exports it untyped

from exchange.broker import ensure_cluster, find_free_base_port, stop_cluster
from exchange.errors import ExchangeError
from exchange.settings import ExchangeSettings
from tests.integration.postgres import postgres_dsn  # noqa: F401  # the PostgreSQL sink tests' session fixture

_HERE = Path(__file__).resolve().parent
_TOPIC_WAIT_S = 60.0

#: ``wait_until(predicate, timeout=..., message=...)``: poll until true or fail the test.
WaitUntil = Callable[..., None]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test collected from this directory ``integration``."""
    for item in items:
        if _HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.integration)


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    message: str,
    interval: float = 0.1,
) -> None:
    """Poll ``predicate`` until it returns True; fail the test after ``timeout`` seconds.

    Tests never sleep blindly: they wait for a condition with a deadline.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting until {message}")
        time.sleep(interval)


@pytest.fixture(name="wait_until", scope="session")
def wait_until_fixture() -> WaitUntil:
    """The :func:`wait_until` deadline helper, as a fixture."""
    return wait_until


@pytest.fixture(scope="session")
def exchange_settings() -> ExchangeSettings:
    """Settings read once from ``EXCHANGE_*`` variables, as the CLI reads them."""
    return ExchangeSettings()


@pytest.fixture(scope="session")
def kafka_libs_cache(exchange_settings: ExchangeSettings) -> Path:
    """The shared cache of resolved Kafka jars (``$EXCHANGE_HOME/kafka/libs``)."""
    return exchange_settings.home / "kafka" / "libs"


@pytest.fixture(scope="session")
def kafka_bootstrap(
    exchange_settings: ExchangeSettings,
    kafka_libs_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """Bootstrap servers of a real Kafka broker for the whole session."""
    if exchange_settings.bootstrap:
        yield exchange_settings.bootstrap
        return
    if _docker_answers():
        # Imported only here: without an engine the import itself is useless weight.
        from testcontainers.community.kafka import KafkaContainer  # noqa: PLC0415

        with KafkaContainer() as container:
            yield container.get_bootstrap_server()
        return
    home = tmp_path_factory.mktemp("exchange-home")
    try:
        info = ensure_cluster(
            home, nodes=1, base_port=find_free_base_port(1), libs_cache=kafka_libs_cache
        )
    except ExchangeError as exc:
        stop_cluster(home)
        pytest.fail(f"the local Kafka broker did not start: {exc.diagnostics()}")
    try:
        yield info.bootstrap
    finally:
        stop_cluster(home)


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> AdminClient:
    """An AdminClient on the session's broker."""
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def create_topic(
    kafka_admin: AdminClient, request: pytest.FixtureRequest, wait_until: WaitUntil
) -> Iterator[Callable[..., str]]:
    """Create uniquely named topics for one test and delete them afterwards.

    Call it as ``create_topic(partitions=1, replication_factor=1, config={...})``; it
    returns the topic name once every partition has a leader.
    """
    created: list[str] = []
    slug = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name)[:60].strip("-")

    def _create(
        *, partitions: int = 1, replication_factor: int = 1, config: dict[str, str] | None = None
    ) -> str:
        name = f"test-{slug}-{uuid.uuid4().hex[:8]}"
        topic = NewTopic(name, partitions, replication_factor, config=config or {})
        kafka_admin.create_topics([topic], operation_timeout=30)[name].result(timeout=_TOPIC_WAIT_S)
        created.append(name)
        wait_until(
            lambda: _has_leaders(kafka_admin, name, partitions),
            timeout=_TOPIC_WAIT_S,
            message=f"every partition of {name} has a leader",
        )
        return name

    yield _create
    if created:
        for future in kafka_admin.delete_topics(created, operation_timeout=30).values():
            future.result(timeout=_TOPIC_WAIT_S)


def _has_leaders(admin: AdminClient, topic: str, partitions: int) -> bool:
    metadata: Any = admin.list_topics(topic=topic, timeout=5)
    described = metadata.topics.get(topic)
    if described is None or described.error is not None:
        return False
    return len(described.partitions) == partitions and all(
        p.leader >= 0 for p in described.partitions.values()
    )


def _docker_answers() -> bool:
    with warnings.catch_warnings():
        # Without an engine the docker SDK can leave its socket to the garbage collector;
        # collect it here, where its ResourceWarning is expected and not a test failure.
        warnings.simplefilter("ignore", ResourceWarning)
        answered = _ping_docker()
        gc.collect()
    return answered


def _ping_docker() -> bool:
    try:
        import docker  # noqa: PLC0415 - optional: only needed when an engine may exist

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure at all means "no usable Docker engine"
        return False
