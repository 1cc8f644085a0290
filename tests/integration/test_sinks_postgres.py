"""The sink contract and the SIGKILL crash tests against a real PostgreSQL server.

Needs the ``postgres_dsn`` session fixture (tests/integration/postgres.py); with no server it
fails rather than skips.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest

from exchange.errors import ConfigurationError
from exchange.sinks import SinkError, open_sink
from exchange.sinks._postgres import PostgresSink
from tests.integration.postgres import scratch_database

# The contract body lives beside the SQLite and JSON-lines tests: one body, three backends.
from tests.unit.sinks.sink_contract import SinkContract, SinkCrashContract
from tests.unit.sinks.sink_data import make_record


@pytest.fixture
def pg_url(postgres_dsn: str) -> Iterator[str]:
    with scratch_database(postgres_dsn) as url:
        yield url


class TestPostgresSink(SinkContract, SinkCrashContract):
    @pytest.fixture
    def sink_url(self, pg_url: str) -> str:
        return pg_url


def _password(url: str) -> str:
    password = urlsplit(url).password
    assert password, "the test cluster is expected to use password authentication"
    return password


def test_password_never_appears_in_repr(pg_url: str) -> None:
    with open_sink(pg_url) as sink:
        assert _password(pg_url) not in repr(sink)
        assert ":***@" in repr(sink)


def test_password_never_appears_in_connection_errors(pg_url: str) -> None:
    password = _password(pg_url)
    wrong = pg_url.replace(f":{password}@", ":not-the-password-42@")
    with pytest.raises(SinkError) as caught:
        PostgresSink(wrong)
    assert "not-the-password-42" not in str(caught.value)
    assert "password authentication failed" in str(caught.value)
    unreachable = pg_url.replace(f"@{urlsplit(pg_url).netloc.split('@')[1]}", "@127.0.0.1:1")
    with pytest.raises(SinkError, match="cannot connect") as caught:
        PostgresSink(unreachable)
    assert password not in str(caught.value)
    assert caught.value.retriable is True


def test_newer_schema_version_is_refused(pg_url: str) -> None:
    PostgresSink(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = 2")
    with pytest.raises(ConfigurationError, match="schema version 2, newer"):
        PostgresSink(pg_url)


def test_uncommitted_batch_is_invisible_to_other_connections(pg_url: str) -> None:
    seen_inside: list[int] = []
    with PostgresSink(pg_url) as observer:

        def look() -> None:
            seen_inside.append(observer.count())

        with PostgresSink(pg_url, before_commit=look) as writer:
            writer.write("g", [make_record(0), make_record(1)])
        assert seen_inside == [0]
        assert observer.count() == 2


def test_dropped_connection_is_retriable_and_the_retry_reconnects(pg_url: str) -> None:
    with PostgresSink(pg_url) as sink:
        sink.write("g", [make_record(0)])
        with psycopg.connect(pg_url, autocommit=True) as admin:
            # Everyone else's backend on this database: the sink's connection.
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(SinkError) as caught:
            sink.write("g", [make_record(1)])
        assert caught.value.retriable is True
        assert sink.write("g", [make_record(1)]).written == 1
        assert [r.sequence for r in sink.records()] == [0, 1]


def test_one_replay_window_row_per_producer_and_partition(pg_url: str) -> None:
    with PostgresSink(pg_url) as sink:
        sink.write("g", [make_record(0, partition=0), make_record(1, partition=1)])
        sink.write("g", [make_record(2, partition=0), make_record(3, topic="t2", partition=0)])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        key = conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = 'replay_windows'::regclass AND i.indisprimary "
            "ORDER BY array_position(i.indkey::int2[], a.attnum)"
        ).fetchall()
        assert [name for (name,) in key] == ["sender", "producer_id", "topic", "kafka_partition"]
        rows = conn.execute(
            "SELECT topic, kafka_partition, highest FROM replay_windows ORDER BY topic, 2"
        ).fetchall()
        topic = make_record(0).topic
        assert rows == [(topic, 0, 2), (topic, 1, 1), ("t2", 0, 3)]
        assert conn.execute("SELECT to_regclass('producers')").fetchone() == (None,)
