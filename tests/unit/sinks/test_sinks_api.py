"""The public surface of exchange.sinks, open_sink's URL parsing, secrets in DSNs, the record."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import exchange.sinks
from exchange.errors import ConfigurationError, InfrastructureError
from exchange.sinks import (
    DeliveredRecord,
    JsonlSink,
    ReplayVerdict,
    SinkError,
    SqliteSink,
    WriteResult,
    open_sink,
    redact_dsn,
)
from exchange.sinks._postgres import PostgresSink
from tests.unit.sinks.sink_data import make_record


def test_public_names_are_pinned() -> None:
    assert sorted(exchange.sinks.__all__) == [
        "DEFAULT_SINK_URL",
        "DeliveredRecord",
        "JsonlSink",
        "ReplayVerdict",
        "Sink",
        "SinkError",
        "SqliteSink",
        "TopicPartition",
        "WINDOW_SIZE",
        "WriteResult",
        "open_sink",
        "redact_dsn",
    ]
    # Lazy, so that SQLite users never import psycopg.
    assert exchange.sinks.PostgresSink is PostgresSink


def test_open_sink_picks_the_backend(tmp_path: Path) -> None:
    with open_sink(f"sqlite:{tmp_path / 'a.db'}") as sink:
        assert isinstance(sink, SqliteSink)
    with open_sink(f"jsonl:{tmp_path / 'dir'}") as sink:
        assert isinstance(sink, JsonlSink)


@pytest.mark.parametrize("url", ["mysql://u@h/db", "sink.db", "sqlite", "postgresql:nohost", ""])
def test_unknown_sink_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(
        ConfigurationError, match=r"use sqlite:PATH, postgresql://\.\.\. or jsonl:DIR"
    ):
        open_sink(url)


@pytest.mark.parametrize("url", ["sqlite:", "jsonl:  "])
def test_sink_url_without_a_path_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="names no path"):
        open_sink(url)


def test_unknown_sink_error_does_not_echo_a_password() -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_sink("mysql://agent:hunter2-secret@db.example/x")
    assert "hunter2-secret" not in str(caught.value)
    assert "mysql://agent:***@db.example/x" in str(caught.value)


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("postgresql://u:s3cr%40t@h:5432/db", "postgresql://u:***@h:5432/db"),
        (
            "postgresql://u@h/db?password=s3cr3t&sslmode=require",
            "postgresql://u@h/db?password=***&sslmode=require",
        ),
        ("host=h user=u password=s3cr3t dbname=db", "host=h user=u password=*** dbname=db"),
        ("host=h password = 'se cr3t' dbname=db", "host=h password = *** dbname=db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
    ],
)
def test_redact_dsn_masks_every_password_form(dsn: str, expected: str) -> None:
    assert redact_dsn(dsn) == expected


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sink.db"
    SqliteSink(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = 2")
    conn.close()
    with pytest.raises(ConfigurationError, match="schema version 2, newer"):
        SqliteSink(path)


def test_a_file_that_is_not_a_database_is_a_sink_error(tmp_path: Path) -> None:
    path = tmp_path / "sink.db"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(SinkError, match="cannot open SQLite sink") as caught:
        SqliteSink(path)
    assert isinstance(caught.value, InfrastructureError)


def test_sqlite_is_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    with SqliteSink(tmp_path / "sink.db") as sink:
        conn = sink._conn  # white-box: the durability settings are the point
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL


def test_sqlite_keeps_one_replay_window_per_producer_and_partition(tmp_path: Path) -> None:
    with SqliteSink(tmp_path / "sink.db") as sink:
        sink.write("g", [make_record(0, partition=0), make_record(1, partition=1)])
        sink.write("g", [make_record(2, partition=0), make_record(3, topic="t2", partition=0)])
        conn = sink._conn  # white-box: the stored layout is the point
        info = conn.execute("PRAGMA table_info(replay_windows)").fetchall()
        primary_key = [name for _, name, *_, pk in sorted(info, key=lambda c: c[-1]) if pk]
        assert primary_key == ["sender", "producer_id", "topic", "kafka_partition"]
        rows = conn.execute(
            "SELECT topic, kafka_partition, highest FROM replay_windows ORDER BY topic, 2"
        ).fetchall()
        assert rows == [(make_record(0).topic, 0, 2), (make_record(0).topic, 1, 1), ("t2", 0, 3)]
        assert (
            conn.execute("SELECT name FROM sqlite_master WHERE name = 'producers'").fetchall() == []
        )


def test_record_round_trips_through_json() -> None:
    record = make_record(4)
    assert DeliveredRecord.from_json_dict(record.to_json_dict()) == record


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("message_id", ""),
        ("sequence", -1),
        ("sequence", 2**63),
        ("partition", 2**31),
        ("offset", True),
        ("created_at", datetime(2026, 1, 1)),
    ],
)
def test_invalid_record_fields_are_refused(field: str, value: object) -> None:
    changes: dict[str, Any] = {field: value}
    with pytest.raises(ValueError, match=field):
        replace(make_record(0), **changes)


def test_write_result_counts() -> None:
    v = ReplayVerdict
    result = WriteResult((v.FRESH, v.DUPLICATE, v.REPLAY, v.FRESH, v.ROLLBACK))
    assert (result.written, result.duplicates, result.rejected) == (2, 1, 2)
