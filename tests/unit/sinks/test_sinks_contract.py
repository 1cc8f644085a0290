"""The sink contract and crash tests against the embedded backends (SQLite, JSON-lines)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.sinks.sink_contract import SinkContract, SinkCrashContract


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:{tmp_path / 'sink.db'}"


@pytest.fixture
def jsonl_url(tmp_path: Path) -> str:
    return f"jsonl:{tmp_path / 'sink'}"


class TestSqliteSink(SinkContract, SinkCrashContract):
    @pytest.fixture
    def sink_url(self, sqlite_url: str) -> str:
        return sqlite_url


class TestJsonlSink(SinkContract, SinkCrashContract):
    concurrent_writers = False

    @pytest.fixture
    def sink_url(self, jsonl_url: str) -> str:
        return jsonl_url
