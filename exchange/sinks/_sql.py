"""Schema and row mapping shared by the SQLite and PostgreSQL sinks.

Unstable module. The two databases hold the same tables so that ``docs/sinks.md`` describes
one layout; only the column types of the serial key, blobs and timestamps differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from exchange.errors import ConfigurationError
from exchange.sinks._model import DeliveredRecord, SinkError
from exchange.sinks._replay import ProducerWindow, WindowKey

__all__ = [
    "RECORD_COLUMNS",
    "SCHEMA_VERSION",
    "check_schema_version",
    "insert_records_sql",
    "record_from_row",
    "record_row",
    "schema_statements",
    "select_window_sql",
    "upsert_windows_sql",
    "window_rows",
]

#: Bump together with a migration step in :func:`schema_statements`' callers.
SCHEMA_VERSION = 1

# Kafka's "partition" and "offset" are reserved words in SQL, hence the prefixes.
RECORD_COLUMNS = (
    "message_id",
    "sender",
    "producer_id",
    "producer_epoch",
    "sequence",
    "record_type",
    "record_id",
    "topic",
    "kafka_partition",
    "kafka_offset",
    "created_at",
    "record_json",
)


def upsert_windows_sql(mark: str) -> str:
    """Insert-or-replace of one ``replay_windows`` row, in :func:`window_rows` column order."""
    marks = ", ".join([mark] * 7)
    # Only constants and placeholders go into the statement; values are bound parameters.
    return (
        "INSERT INTO replay_windows (sender, producer_id, topic, kafka_partition, epoch, "  # noqa: S608
        f"highest, bitmap) VALUES ({marks}) "
        "ON CONFLICT (sender, producer_id, topic, kafka_partition) DO UPDATE SET "
        "epoch = excluded.epoch, highest = excluded.highest, bitmap = excluded.bitmap"
    )


def select_window_sql(mark: str) -> str:
    """``SELECT epoch, highest, bitmap`` of one window; bind a ``WindowKey`` to it."""
    # Only the placeholder goes into the statement; the key is bound.
    return (
        f"SELECT epoch, highest, bitmap FROM replay_windows WHERE sender = {mark} "  # noqa: S608
        f"AND producer_id = {mark} AND topic = {mark} AND kafka_partition = {mark}"
    )


def window_rows(windows: Mapping[WindowKey, ProducerWindow]) -> list[tuple[object, ...]]:
    """Rows for :func:`upsert_windows_sql`, in key order (a stable lock order for PostgreSQL)."""
    return [
        (sender, producer_id, topic, partition, w.epoch, w.highest, w.bitmap_bytes())
        for (sender, producer_id, topic, partition), w in sorted(windows.items())
    ]


def insert_records_sql(mark: str) -> str:
    """``INSERT`` of one records row with placeholder ``mark`` (``?`` or ``%s``), idempotent."""
    columns = ", ".join(RECORD_COLUMNS)
    marks = ", ".join([mark] * len(RECORD_COLUMNS))
    # Only constants and placeholders go into the statement; values are bound parameters.
    return (
        f"INSERT INTO records ({columns}) VALUES ({marks}) "  # noqa: S608
        "ON CONFLICT (message_id) DO NOTHING"
    )


def schema_statements(*, serial: str, blob: str, timestamp: str) -> list[str]:
    """DDL of schema version 1.

    Args:
        serial: column definition of the storage-order key, e.g. ``INTEGER PRIMARY KEY``.
        blob: binary column type.
        timestamp: type of ``created_at``.

    Returns:
        Statements to run in order inside one transaction.
    """
    return [
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        f"""CREATE TABLE records (
            seq {serial},
            message_id TEXT NOT NULL UNIQUE,
            sender TEXT NOT NULL,
            producer_id TEXT NOT NULL,
            producer_epoch BIGINT NOT NULL,
            sequence BIGINT NOT NULL,
            record_type TEXT NOT NULL,
            record_id TEXT NOT NULL,
            topic TEXT NOT NULL,
            kafka_partition INTEGER NOT NULL,
            kafka_offset BIGINT NOT NULL,
            created_at {timestamp} NOT NULL,
            record_json TEXT NOT NULL
        )""",
        # One row per authenticated producer and partition it wrote to: the anti-replay
        # state of docs/sinks.md.
        f"""CREATE TABLE replay_windows (
            sender TEXT NOT NULL,
            producer_id TEXT NOT NULL,
            topic TEXT NOT NULL,
            kafka_partition INTEGER NOT NULL,
            epoch BIGINT NOT NULL,
            highest BIGINT NOT NULL,
            bitmap {blob} NOT NULL,
            PRIMARY KEY (sender, producer_id, topic, kafka_partition)
        )""",
        """CREATE TABLE offsets (
            group_id TEXT NOT NULL,
            topic TEXT NOT NULL,
            kafka_partition INTEGER NOT NULL,
            next_offset BIGINT NOT NULL,
            PRIMARY KEY (group_id, topic, kafka_partition)
        )""",
    ]


def record_row(item: DeliveredRecord) -> tuple[object, ...]:
    """Column values of ``item`` in :data:`RECORD_COLUMNS` order."""
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
        item.created_at.isoformat(),
        item.record_json,
    )


def record_from_row(row: Sequence[object]) -> DeliveredRecord:
    """Inverse of :func:`record_row` (``created_at`` may come back as text or datetime).

    Raises:
        SinkError: the row does not hold a valid record (the store was edited by hand).
    """
    values = dict(zip(RECORD_COLUMNS, row, strict=True))
    created = values["created_at"]
    try:
        return DeliveredRecord(
            message_id=str(values["message_id"]),
            sender=str(values["sender"]),
            producer_id=str(values["producer_id"]),
            producer_epoch=_int(values["producer_epoch"]),
            sequence=_int(values["sequence"]),
            record_type=str(values["record_type"]),
            record_id=str(values["record_id"]),
            topic=str(values["topic"]),
            partition=_int(values["kafka_partition"]),
            offset=_int(values["kafka_offset"]),
            created_at=created
            if isinstance(created, datetime)
            else datetime.fromisoformat(str(created)),
            record_json=str(values["record_json"]),
        )
    except (ValueError, TypeError) as exc:
        error = SinkError(f"stored record {values['message_id']!r} is invalid: {exc}")
        error.retriable = False
        raise error from exc


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"got {type(value).__name__}, expected int")
    return value


def check_schema_version(found: object, where: str) -> None:
    """Accept only :data:`SCHEMA_VERSION` (v1 is the first, so there is nothing to migrate yet).

    Raises:
        ConfigurationError: the store was written by a newer version of the code.
        SinkError: the version row is missing or nonsense.
    """
    if found == SCHEMA_VERSION:
        return
    if isinstance(found, int) and found > SCHEMA_VERSION:
        raise ConfigurationError(
            f"sink {where} has schema version {found}, newer than this version's "
            f"{SCHEMA_VERSION}; upgrade binational-exchange to read it"
        )
    # A version below ours would be migrated here one step at a time, in the same
    # transaction that bumps schema_version.
    error = SinkError(f"sink {where} has unknown schema version {found!r}")
    error.retriable = False
    raise error
