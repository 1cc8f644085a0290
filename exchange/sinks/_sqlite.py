"""SQLite sink: the embedded default (``sqlite:PATH``).

Unstable module. One ``BEGIN IMMEDIATE`` transaction per batch takes SQLite's single write
lock before reading any state, so two processes writing the same file serialize and each
plans its batch against the other's committed result. WAL with ``synchronous=FULL`` makes a
returned commit durable across power loss, not only across a process crash.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from exchange.sinks._base import BeforeCommitHook, SinkBase, check_group_id
from exchange.sinks._model import DeliveredRecord, SinkError, TopicPartition, WriteResult
from exchange.sinks._replay import ProducerWindow, WindowKey, plan_batch
from exchange.sinks._sql import (
    RECORD_COLUMNS,
    SCHEMA_VERSION,
    check_schema_version,
    insert_records_sql,
    record_from_row,
    record_row,
    schema_statements,
    select_window_sql,
    upsert_windows_sql,
    window_rows,
)

__all__ = ["SqliteSink"]

logger = logging.getLogger(__name__)

_BUSY_TIMEOUT_MS = 30_000
# SQLite allows 32766 host parameters; stay far below it for any build.
_ID_CHUNK = 500
_PAGE = 1000


class SqliteSink(SinkBase):
    """Exactly-once sink in one SQLite file.

    Example::

        with SqliteSink("consumer.db") as sink:
            result = sink.write("my-group", items)

    Args:
        path: database file; created with its schema when missing.
        before_commit: test hook run inside each write transaction just before COMMIT.

    Raises:
        SinkError: the file cannot be opened or is not a sink database.
        ConfigurationError: the file was written by a newer schema version.
    """

    def __init__(self, path: str | Path, *, before_commit: BeforeCommitHook | None = None) -> None:
        super().__init__()
        self._path = Path(path)
        self._before_commit = before_commit
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so nothing commits early.
            self._conn = sqlite3.connect(self._path, isolation_level=None)
            self._conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._migrate()
        except sqlite3.Error as exc:
            self._close_quietly()
            raise SinkError(f"cannot open SQLite sink {self._path}: {exc}") from exc
        except BaseException:
            self._close_quietly()
            raise

    def _close_quietly(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()

    def __repr__(self) -> str:
        return f"SqliteSink({str(self._path)!r})"

    def _migrate(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            exists = self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            ).fetchone()
            if exists is None:
                for statement in schema_statements(
                    serial="INTEGER PRIMARY KEY", blob="BLOB", timestamp="TEXT"
                ):
                    self._conn.execute(statement)
                self._conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            else:
                row = self._conn.execute("SELECT max(version) FROM schema_version").fetchone()
                check_schema_version(row[0] if row else None, str(self._path))
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def stored_offsets(self, group_id: str) -> dict[TopicPartition, int]:
        """Next offset to read per ``(topic, partition)`` of ``group_id``.

        Raises:
            SinkError: the database cannot be read.
        """
        self._lifecycle.check_open()
        check_group_id(group_id)
        rows = self._query(
            "SELECT topic, kafka_partition, next_offset FROM offsets WHERE group_id = ?",
            (group_id,),
        )
        return {(topic, partition): offset for topic, partition, offset in rows}

    def _write(
        self,
        group_id: str,
        batch: tuple[DeliveredRecord, ...],
        skipped_offsets: Mapping[TopicPartition, int] | None,
    ) -> WriteResult:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            # One DEBUG line when the write transaction holds the lock and one once COMMIT
            # returned: a crash between them is a crash inside the transaction, which the
            # fault tests (tests/integration/test_faults_*.py) aim their SIGKILLs at and prove.
            logger.debug("sink transaction begin: %d item(s)", len(batch))
            try:
                stored_ids, windows = self._load(batch)
                plan = plan_batch(
                    batch, stored_ids=stored_ids, windows=windows, skipped_offsets=skipped_offsets
                )
                self._conn.executemany(
                    insert_records_sql("?"),
                    [record_row(item) for item in plan.fresh],
                )
                self._conn.executemany(upsert_windows_sql("?"), window_rows(plan.windows))
                self._conn.executemany(
                    "INSERT INTO offsets VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (group_id, topic, kafka_partition) "
                    "DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
                    [(group_id, t, p, o) for (t, p), o in plan.offsets.items()],
                )
                if self._before_commit is not None:
                    self._before_commit()
                self._conn.execute("COMMIT")
                logger.debug("sink transaction commit: %d stored", len(plan.fresh))
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _sink_error("write to", self._path, exc) from exc
        return WriteResult(tuple(plan.verdicts))

    def _read_state(
        self, batch: Sequence[DeliveredRecord]
    ) -> tuple[set[str], dict[WindowKey, ProducerWindow]]:
        try:
            # A deferred read transaction gives ids and windows from one snapshot.
            self._conn.execute("BEGIN")
            try:
                return self._load(batch)
            finally:
                self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise _sink_error("read", self._path, exc) from exc

    def _load(
        self, batch: Sequence[DeliveredRecord]
    ) -> tuple[set[str], dict[WindowKey, ProducerWindow]]:
        ids = sorted({item.message_id for item in batch})
        stored: set[str] = set()
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT message_id FROM records WHERE message_id IN ({marks})",  # noqa: S608  # only ? marks
                chunk,
            )
            stored.update(row[0] for row in rows)
        windows: dict[WindowKey, ProducerWindow] = {}
        for key in {item.window_key for item in batch}:
            row = self._conn.execute(select_window_sql("?"), key).fetchone()
            if row is not None:
                windows[key] = ProducerWindow.from_stored(row[0], row[1], row[2])
        return stored, windows

    def count(self) -> int:
        """Number of stored records.

        Raises:
            SinkError: the database cannot be read.
        """
        self._lifecycle.check_open()
        return int(self._query("SELECT count(*) FROM records", ())[0][0])

    def records(self) -> Iterator[DeliveredRecord]:
        """Stored records in storage order, read a page at a time.

        Raises:
            SinkError: the database cannot be read.
        """
        self._lifecycle.check_open()
        after = 0
        while True:
            rows = self._query(
                f"SELECT seq, {', '.join(RECORD_COLUMNS)} FROM records "  # noqa: S608  # constant columns
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, _PAGE),
            )
            for row in rows:
                yield record_from_row(row[1:])
            if len(rows) < _PAGE:
                return
            after = rows[-1][0]

    def get(self, message_id: str) -> DeliveredRecord | None:
        """The stored record with ``message_id``, or None.

        Raises:
            SinkError: the database cannot be read.
        """
        self._lifecycle.check_open()
        rows = self._query(
            f"SELECT {', '.join(RECORD_COLUMNS)} FROM records WHERE message_id = ?",  # noqa: S608  # constant columns
            (message_id,),
        )
        return record_from_row(rows[0]) if rows else None

    def _query(self, sql: str, params: Sequence[object]) -> list[Any]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _sink_error("read", self._path, exc) from exc

    def _close(self) -> None:
        self._conn.close()


def _sink_error(action: str, path: Path, exc: sqlite3.Error) -> SinkError:
    error = SinkError(f"cannot {action} SQLite sink {path}: {exc}")
    # "database is locked" (busy timeout) passes; anything else needs a look.
    error.retriable = isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
    return error
