"""One benchmark role in its own process: ``python -m exchange.bench.worker ROLE ...``.

Each role runs alone in a process so its peak RSS is its own and the GIL does not couple the
producer with the consumer. A role writes one JSON object (see :mod:`exchange.bench.stats`)
to ``--out``. Keys, records and clients come from :mod:`exchange.bench.workload`.
Unstable module: the runner is its only caller.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from exchange._internal.heap import settle_heap_for_streaming
from exchange.bench.workload import (
    RECIPIENT,
    RECORD_TYPE,
    SENDER,
    Publisher,
    keys,
    paced,
    peak_rss,
    record_pool,
    records,
    secure_consumer,
    secure_producer,
    secure_publisher,
    topic_for,
)
from exchange.consumers.unsealed import UnsealedAvroConsumer
from exchange.crypto.keys import SuiteId
from exchange.producers.unsealed import UnsealedAvroProducer
from exchange.records import ExchangeRecord, record_type
from exchange.sinks import open_sink

__all__ = ["CONSUMER_OVERRIDES", "main"]

#: The secure consumer's own overrides, given to the plain consumer too: same settings.
CONSUMER_OVERRIDES: dict[str, Any] = {
    "max.partition.fetch.bytes": 2 << 20,
    "topic.metadata.refresh.interval.ms": 30_000,
}
_RSS_EVERY = 1_000
#: Longest wait for a message, the same in both consumers (``UnsealedAvroConsumer.poll`` and
#: ``SecureConsumer.poll_batch``); both return as soon as a message is there.
_POLL_S = 0.2


def _pool(count: int, pool_size: int) -> list[ExchangeRecord]:
    return record_pool(min(pool_size, count))


def _publisher(args: argparse.Namespace) -> Publisher:
    rtype = record_type(RECORD_TYPE)
    topic = topic_for(args.variant, args.prefix)
    if args.variant == "plain":
        plain = UnsealedAvroProducer(bootstrap=args.bootstrap, client_id=SENDER)
        sizes = [0]

        def publish_plain(record: ExchangeRecord, rid: str) -> None:
            sizes[0] += plain.publish(rtype, record, topic=topic, key=rid.encode())

        # publish() serves delivery reports itself; librdkafka sends from its own thread.
        return Publisher(publish_plain, lambda: None, plain.flush, plain.close, lambda: sizes[0])
    suite = SuiteId(args.variant)
    return secure_publisher(secure_producer(args.bootstrap, keys(suite), suite, args.prefix))


def produce(args: argparse.Namespace) -> dict[str, Any]:
    """Publish ``--records`` records, paced at ``--rate`` per second when it is positive.

    The first record is a warm-up, published and flushed before the clock starts: connection,
    metadata and the idempotent producer id are set up once per process, not per record.
    """
    stream = records(_pool(args.records, args.pool), args.records)
    out = _publisher(args)
    rid, record = next(stream)
    out.publish(record, rid)
    out.flush()
    sent: dict[str, int] = {}
    if args.rate > 0:
        settle_heap_for_streaming()  # every role and variant alike (`exchange consume` does too)
        start = time.time_ns()
        paced(args.rate, stream, out, lambda _i, rid, due: sent.__setitem__(rid, due))
    else:
        timed = list(stream)  # copies made before the clock starts
        settle_heap_for_streaming()
        start = time.time_ns()
        for rid, record in timed:
            out.publish(record, rid)
    out.close()
    end = time.time_ns()
    return {
        "count": args.records, "timed": args.records - 1, "start_ns": start, "end_ns": end,
        "value_bytes": out.value_bytes(), "peak_rss": peak_rss(), "sent_ns": sent,
    }  # fmt: skip


def consume(args: argparse.Namespace) -> dict[str, Any]:
    """Consume until ``--records`` records arrived or nothing came for ``--idle`` seconds."""
    received: dict[str, int] = {}
    samples: list[tuple[int, int]] = []
    state = {"count": 0, "first": 0, "last": 0}
    process = psutil.Process()

    def seen(rid: str) -> None:
        now = time.time_ns()
        state["first"] = state["first"] or now
        state["last"] = now
        state["count"] += 1
        if args.times:
            received[rid] = now
        if state["count"] % _RSS_EVERY == 0:
            samples.append((state["count"], process.memory_info().rss))

    poll, close = _consumer_loop(args, seen)
    settle_heap_for_streaming()  # the same collector settings for every variant
    try:
        idle_since = time.monotonic()
        while state["count"] < args.records and time.monotonic() - idle_since < args.idle:
            if poll():
                idle_since = time.monotonic()
    finally:
        close()
    return {
        "count": state["count"], "first_ns": state["first"], "last_ns": state["last"],
        "peak_rss": peak_rss(), "received_ns": received, "rss_samples": samples,
    }  # fmt: skip


def _consumer_loop(
    args: argparse.Namespace, seen: Callable[[str], None]
) -> tuple[Callable[[], int], Callable[[], None]]:
    """A function that polls once and returns how many records it handled, and a closer."""
    if args.variant == "plain":
        plain = UnsealedAvroConsumer(
            bootstrap=args.bootstrap, group_id=args.group, client_id=RECIPIENT,
            topics=[topic_for("plain", args.prefix)], config_overrides=CONSUMER_OVERRIDES,
        )  # fmt: skip

        def poll_plain() -> int:
            item = plain.poll(_POLL_S)
            if item is None:
                return 0
            seen(item.record.meta.record_id)
            return 1

        return poll_plain, plain.close
    sink = open_sink(f"sqlite:{Path(args.workdir) / (args.group + '.db')}")
    secure = secure_consumer(
        args.bootstrap, keys(SuiteId(args.variant)), sink=sink, group=args.group,
        prefix=args.prefix, handler=lambda item, _record: seen(item.record_id),
    )  # fmt: skip

    def poll_secure() -> int:
        return secure.poll_batch(_POLL_S)

    def close_secure() -> None:
        secure.close()
        sink.close()

    return poll_secure, close_secure


def main(argv: list[str] | None = None) -> int:
    """Run one role; write its JSON result to ``--out``."""
    parser = argparse.ArgumentParser(prog="python -m exchange.bench.worker")
    parser.add_argument("role", choices=["produce", "consume"])
    parser.add_argument("--variant", required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--pool", type=int, default=500)
    parser.add_argument("--group", default="bench")
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--times", action="store_true", help="record per-message times")
    parser.add_argument("--workdir", default=tempfile.gettempdir())
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    # Workers share the terminal with the progress bar: errors only (the unsealed producer's
    # warning is expected here: the baseline is unsealed on purpose).
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    result = produce(args) if args.role == "produce" else consume(args)
    Path(args.out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
