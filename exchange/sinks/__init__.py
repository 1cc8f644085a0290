"""Exactly-once sinks for verified, decrypted records: SQLite, PostgreSQL, JSON-lines.

A sink stores records, the anti-replay windows (one per producer and partition) and the
consumer group's next offsets in one atomic step, so a crash at any point loses nothing and
duplicates nothing: on restart the consumer seeks to :meth:`Sink.stored_offsets` and re-reads
exactly what was not stored. The rules for FRESH/DUPLICATE/REPLAY/ROLLBACK are in ``docs/sinks.md``.

Example::

    from exchange.sinks import ReplayVerdict, open_sink

    with open_sink("sqlite:consumer.db") as sink:
        batch, skipped = [], {}
        verdicts = sink.check_batch(polled)        # DeliveredRecords, in consumption order
        for item, verdict in zip(polled, verdicts):
            if verdict is ReplayVerdict.FRESH:
                batch.append(item)
            else:                                  # quarantine REPLAY/ROLLBACK first
                skipped[(item.topic, item.partition)] = item.offset
        result = sink.write("my-group", batch, skipped_offsets=skipped)
"""

from __future__ import annotations

from exchange.sinks._dsn import redact_dsn
from exchange.sinks._factory import DEFAULT_SINK_URL, open_sink
from exchange.sinks._jsonl import JsonlSink
from exchange.sinks._model import (
    DeliveredRecord,
    ReplayVerdict,
    Sink,
    SinkError,
    TopicPartition,
    WriteResult,
)
from exchange.sinks._replay import WINDOW_SIZE
from exchange.sinks._sqlite import SqliteSink

__all__ = [
    "DEFAULT_SINK_URL",
    "WINDOW_SIZE",
    "DeliveredRecord",
    "JsonlSink",
    "ReplayVerdict",
    "Sink",
    "SinkError",
    "SqliteSink",
    "TopicPartition",
    "WriteResult",
    "open_sink",
    "redact_dsn",
]


def __getattr__(name: str) -> object:
    # PostgresSink imports psycopg; load it only when asked for.
    if name == "PostgresSink":
        from exchange.sinks._postgres import PostgresSink  # noqa: PLC0415

        return PostgresSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
