"""PostgreSQL sink (``postgresql://...``), on psycopg 3.

Unstable module. Each batch is one SERIALIZABLE transaction: PostgreSQL then guarantees the
result equals some serial order of all concurrent batches, so two consumers of one group (a
zombie after a rebalance still writing a partition, or one envelope copied into two
partitions) can never both accept one sequence or both insert one message id. A serialization
failure or deadlock rolls the whole batch back and it is re-planned from scratch, a bounded
number of times.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from exchange.sinks._base import BeforeCommitHook, SinkBase, check_group_id
from exchange.sinks._dsn import redact_dsn, scrub
from exchange.sinks._model import DeliveredRecord, SinkError, TopicPartition, WriteResult
from exchange.sinks._replay import BatchPlan, ProducerWindow, WindowKey, plan_batch
from exchange.sinks._sql import (
    RECORD_COLUMNS,
    SCHEMA_VERSION,
    check_schema_version,
    insert_records_sql,
    record_from_row,
    schema_statements,
    select_window_sql,
    upsert_windows_sql,
    window_rows,
)

__all__ = ["PostgresSink"]

_RETRIES = 8
_BACKOFF_S = 0.005
_PAGE = 1000
# Any constant works: it only serializes schema creation between processes.
_MIGRATION_LOCK = 0x45584348
_COLUMNS = ", ".join(RECORD_COLUMNS)
_RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)


class PostgresSink(SinkBase):
    """Exactly-once sink in a PostgreSQL database (tables in the connection's search_path).

    Example::

        with PostgresSink("postgresql://exchange@db.internal/consumer") as sink:
            offsets = sink.stored_offsets("my-group")

    Args:
        dsn: libpq connection string or URL; the password never appears in repr or errors.
        before_commit: test hook run inside each write transaction just before COMMIT.

    Raises:
        SinkError: the server cannot be reached or the schema cannot be created.
        ConfigurationError: the database holds a newer schema version.
    """

    def __init__(self, dsn: str, *, before_commit: BeforeCommitHook | None = None) -> None:
        super().__init__()
        self._dsn = dsn
        self._where = redact_dsn(dsn)
        self._before_commit = before_commit
        self._conn = self._connect()
        try:
            # READ COMMITTED while migrating: each statement after the advisory lock then sees
            # what a concurrent migrator committed (a SERIALIZABLE snapshot would predate it).
            self._conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
            self._migrate()
            self._conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
        except psycopg.Error as exc:
            self._conn.close()
            raise self._error("create the schema of", exc) from exc
        except BaseException:
            self._conn.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresSink({self._where!r})"

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            return psycopg.connect(self._dsn, autocommit=True)
        except psycopg.Error as exc:
            # from None: keep the driver's exception (and anything it quoted) out of tracebacks.
            raise self._error("connect to", exc) from None

    def _live(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The connection, reconnected if the server dropped it (a restart, a failover).

        The failure itself surfaced once as a retriable SinkError; the retry gets a new
        connection instead of failing for ever.
        """
        if self._conn.broken or self._conn.closed:
            self._conn.close()
            self._conn = self._connect()
            self._conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
        return self._conn

    def _error(self, action: str, exc: psycopg.Error) -> SinkError:
        # libpq does not echo passwords, but scrub anyway: a DSN may end up in a message.
        error = SinkError(
            f"cannot {action} PostgreSQL sink {self._where}: {scrub(str(exc), self._dsn)}"
        )
        error.retriable = isinstance(exc, (psycopg.OperationalError, *_RETRYABLE))
        return error

    def _migrate(self) -> None:
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            exists = self._conn.execute("SELECT to_regclass('schema_version')").fetchone()
            if exists is None or exists[0] is None:
                for statement in schema_statements(
                    serial="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
                    blob="BYTEA",
                    timestamp="TIMESTAMPTZ",
                ):
                    self._conn.execute(statement)
                self._conn.execute("INSERT INTO schema_version VALUES (%s)", (SCHEMA_VERSION,))
            else:
                row = self._conn.execute("SELECT max(version) FROM schema_version").fetchone()
                check_schema_version(row[0] if row else None, self._where)

    def stored_offsets(self, group_id: str) -> dict[TopicPartition, int]:
        """Next offset to read per ``(topic, partition)`` of ``group_id``.

        Raises:
            SinkError: the database cannot be read.
        """
        self._lifecycle.check_open()
        check_group_id(group_id)
        rows = self._query(
            "SELECT topic, kafka_partition, next_offset FROM offsets WHERE group_id = %s",
            (group_id,),
        )
        return {(str(t), int(p)): int(o) for t, p, o in rows}

    def _write(
        self,
        group_id: str,
        batch: tuple[DeliveredRecord, ...],
        skipped_offsets: Mapping[TopicPartition, int] | None,
    ) -> WriteResult:
        for attempt in range(_RETRIES):
            try:
                with self._live().transaction():
                    plan = self._write_once(group_id, batch, skipped_offsets)
                return WriteResult(tuple(plan.verdicts))
            except _RETRYABLE as exc:
                if attempt == _RETRIES - 1:
                    raise self._error("write to", exc) from exc
                # Jittered backoff, so two consumers that collided do not collide again in step.
                time.sleep(random.uniform(0, _BACKOFF_S * 2**attempt))  # noqa: S311  # not crypto
            except psycopg.Error as exc:
                raise self._error("write to", exc) from exc
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _write_once(
        self,
        group_id: str,
        batch: Sequence[DeliveredRecord],
        skipped_offsets: Mapping[TopicPartition, int] | None,
    ) -> BatchPlan:
        stored_ids, windows = self._load(batch)
        plan = plan_batch(
            batch, stored_ids=stored_ids, windows=windows, skipped_offsets=skipped_offsets
        )
        with self._conn.cursor() as cur:
            cur.executemany(
                insert_records_sql("%s"),
                [_pg_row(item) for item in plan.fresh],
            )
            cur.executemany(upsert_windows_sql("%s"), window_rows(plan.windows))
            cur.executemany(
                "INSERT INTO offsets VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (group_id, topic, kafka_partition) "
                "DO UPDATE SET next_offset = GREATEST(offsets.next_offset, excluded.next_offset)",
                [(group_id, t, p, o) for (t, p), o in plan.offsets.items()],
            )
        if self._before_commit is not None:
            self._before_commit()
        return plan

    def _read_state(
        self, batch: Sequence[DeliveredRecord]
    ) -> tuple[set[str], dict[WindowKey, ProducerWindow]]:
        try:
            with self._live().transaction():
                return self._load(batch)
        except psycopg.Error as exc:
            raise self._error("read", exc) from exc

    def _load(
        self, batch: Sequence[DeliveredRecord]
    ) -> tuple[set[str], dict[WindowKey, ProducerWindow]]:
        ids = sorted({item.message_id for item in batch})
        rows = self._conn.execute(
            "SELECT message_id FROM records WHERE message_id = ANY(%s)", (ids,)
        ).fetchall()
        stored = {str(row[0]) for row in rows}
        windows: dict[WindowKey, ProducerWindow] = {}
        for key in sorted({item.window_key for item in batch}):
            row = self._conn.execute(select_window_sql("%s"), key).fetchone()
            if row is not None:
                windows[key] = ProducerWindow.from_stored(row[0], row[1], bytes(row[2]))
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
                f"SELECT seq, {_COLUMNS} FROM records WHERE seq > %s ORDER BY seq LIMIT %s",  # noqa: S608  # constant columns
                (after, _PAGE),
            )
            for row in rows:
                yield record_from_row(row[1:])
            if len(rows) < _PAGE:
                return
            after = int(rows[-1][0])

    def get(self, message_id: str) -> DeliveredRecord | None:
        """The stored record with ``message_id``, or None.

        Raises:
            SinkError: the database cannot be read.
        """
        self._lifecycle.check_open()
        rows = self._query(
            f"SELECT {_COLUMNS} FROM records WHERE message_id = %s",  # noqa: S608  # constant columns
            (message_id,),
        )
        return record_from_row(rows[0]) if rows else None

    def _query(self, sql: str, params: Sequence[object]) -> list[Any]:
        try:
            with self._live().transaction():
                return self._conn.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise self._error("read", exc) from exc

    def _close(self) -> None:
        self._conn.close()


def _pg_row(item: DeliveredRecord) -> tuple[object, ...]:
    # TIMESTAMPTZ takes the datetime itself; the other columns map as for SQLite.
    return (
        item.message_id,
        item.sender,
        item.producer_id,
        item.producer_epoch,
        item.sequence,
        item.record_type,
        item.record_id,
        item.topic,
        item.partition,
        item.offset,
        item.created_at,
        item.record_json,
    )
