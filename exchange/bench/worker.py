"""One benchmark role in its own process: ``python -m exchange.bench.worker ROLE ...``.

Each role runs alone in a process so its peak RSS is its own and the GIL does not couple the
producer with the consumer. A role writes one JSON object (see :mod:`exchange.bench.stats`)
to ``--out``. Keys are in memory (:mod:`exchange.crypto.testing`), derived from a fixed seed
so the producer and consumer processes hold the same key pairs without sharing files.
Unstable module: the runner is its only caller.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from exchange.consumers.secure import SecureConsumer
from exchange.consumers.unsealed import UnsealedAvroConsumer
from exchange.crypto.keys import SuiteId
from exchange.crypto.testing import InMemoryAgency, InMemoryTrust
from exchange.policy import allowed_recipients, summary_from_handling
from exchange.producers.secure import SecureProducer
from exchange.producers.unsealed import UnsealedAvroProducer
from exchange.records import ExchangeRecord, record_type
from exchange.records.sample import generate
from exchange.routing import RoutingRule, RoutingTable, exchange_topic, reach_for
from exchange.sinks import open_sink

__all__ = ["CONSUMER_OVERRIDES", "RECIPIENT", "SENDER", "main", "topic_for"]

SENDER, RECIPIENT = "MEX-FGR", "USA-ATF"
RECORD_TYPE = "seizure"
_KEY_SEED = b"exchange-bench-keys-v1"
_RECORD_SEED = 7
_IDS = uuid.UUID("6f1c3c35-2a47-4b53-9a55-5d1f0e0b4d21")
#: The secure consumer's own overrides, given to the plain consumer too: same settings.
CONSUMER_OVERRIDES: dict[str, Any] = {
    "max.partition.fetch.bytes": 2 << 20,
    "topic.metadata.refresh.interval.ms": 30_000,
}
_RSS_EVERY = 1_000
#: Longest wait for a message, the same in both consumers (``UnsealedAvroConsumer.poll`` and
#: ``SecureConsumer.poll_batch``); both return as soon as a message is there.
_POLL_S = 0.2


def topic_for(variant: str, prefix: str) -> str:
    """The topic a variant's records go to under ``prefix``."""
    if variant == "plain":
        return f"{prefix}plain.{RECORD_TYPE}"
    return exchange_topic(SENDER, reach_for(SENDER, [RECIPIENT]), RECORD_TYPE, prefix=prefix)


def _agency(agency_id: str, suite: SuiteId) -> InMemoryAgency:
    agency = InMemoryAgency(agency_id)  # randomized signatures, as in production
    agency.add_generation(suite, seed=_KEY_SEED)
    return agency


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _pool(count: int, pool_size: int) -> list[ExchangeRecord]:
    """A seeded pool of sample records whose handling releases them to the recipient (some
    are domestic only), so the plain and secure variants move exactly the same records."""
    size = min(pool_size, count)
    generated = generate(RECORD_TYPE, count=2 * size, seed=_RECORD_SEED, originator=SENDER)
    return [r for r in generated if _releasable(r)][:size]


def _records(pool: list[ExchangeRecord], count: int) -> Iterator[tuple[str, ExchangeRecord]]:
    """``count`` records cycling over ``pool``, each with its own record id."""
    for i in range(count):
        base = pool[i % len(pool)]
        rid = str(uuid.uuid5(_IDS, str(i)))
        meta = base.meta.model_copy(update={"record_id": rid})
        yield rid, base.model_copy(update={"meta": meta})


def _releasable(record: ExchangeRecord) -> bool:
    handling = summary_from_handling(record.handling)
    return RECIPIENT in allowed_recipients(handling, frozenset({RECIPIENT}), sender=SENDER)


@dataclass
class _Publisher:
    publish: Callable[[ExchangeRecord, str], None]
    idle: Callable[[], None]
    flush: Callable[[], object]
    close: Callable[[], None]
    value_bytes: Callable[[], int]


def _publisher(args: argparse.Namespace) -> _Publisher:
    rtype = record_type(RECORD_TYPE)
    topic = topic_for(args.variant, args.prefix)
    if args.variant == "plain":
        plain = UnsealedAvroProducer(bootstrap=args.bootstrap, client_id=SENDER)
        sizes = [0]

        def publish_plain(record: ExchangeRecord, rid: str) -> None:
            sizes[0] += plain.publish(rtype, record, topic=topic, key=rid.encode())

        # publish() serves delivery reports itself; librdkafka sends from its own thread.
        return _Publisher(publish_plain, lambda: None, plain.flush, plain.close, lambda: sizes[0])
    suite = SuiteId(args.variant)
    mex, usa = _agency(SENDER, suite), _agency(RECIPIENT, suite)
    rule = RoutingRule(senders=[SENDER], record_types=[RECORD_TYPE], recipients=[RECIPIENT])
    secure = SecureProducer(
        bootstrap=args.bootstrap, sender=mex, trust=InMemoryTrust.of(mex, usa),
        routing=RoutingTable(rules=[rule]), suite=suite, topic_prefix=args.prefix,
    )  # fmt: skip

    def publish_secure(record: ExchangeRecord, rid: str) -> None:  # noqa: ARG001  # key = id
        secure.publish(record)

    return _Publisher(
        publish_secure, secure.poll, secure.flush, secure.close,
        lambda: secure.summary.bytes,
    )  # fmt: skip


def produce(args: argparse.Namespace) -> dict[str, Any]:
    """Publish ``--records`` records, paced at ``--rate`` per second when it is positive.

    The first record is a warm-up, published and flushed before the clock starts: connection,
    metadata and the idempotent producer id are set up once per process, not per record.
    """
    records = _records(_pool(args.records, args.pool), args.records)
    out = _publisher(args)
    rid, record = next(records)
    out.publish(record, rid)
    out.flush()
    sent: dict[str, int] = {}
    if args.rate > 0:
        start = time.time_ns()
        _paced(args.rate, records, out, sent)
    else:
        timed = list(records)  # copies made before the clock starts
        start = time.time_ns()
        for rid, record in timed:
            out.publish(record, rid)
    out.close()
    end = time.time_ns()
    return {
        "count": args.records, "timed": args.records - 1, "start_ns": start, "end_ns": end,
        "value_bytes": out.value_bytes(), "peak_rss": _peak_rss(), "sent_ns": sent,
    }  # fmt: skip


def _paced(
    rate: float,
    records: Iterator[tuple[str, ExchangeRecord]],
    out: _Publisher,
    sent: dict[str, int],
) -> None:
    """Open loop: record ``i`` is due at ``t0 + i / rate``; its latency counts from then, so a
    producer that falls behind shows it as latency (no coordinated omission)."""
    period_ns = int(1e9 / rate)
    t0, wall0 = time.perf_counter_ns(), time.time_ns()
    for i, (rid, record) in enumerate(records):
        due = t0 + i * period_ns
        while (now := time.perf_counter_ns()) < due:
            out.idle()  # serves delivery reports; the secure producer seals a lingering batch
            if due - now > 300_000:
                time.sleep(min((due - now) / 1e9 - 0.0002, 0.001))
        sent[rid] = wall0 + (due - t0)
        out.publish(record, rid)


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
    try:
        idle_since = time.monotonic()
        while state["count"] < args.records and time.monotonic() - idle_since < args.idle:
            if poll():
                idle_since = time.monotonic()
    finally:
        close()
    return {
        "count": state["count"], "first_ns": state["first"], "last_ns": state["last"],
        "peak_rss": _peak_rss(), "received_ns": received, "rss_samples": samples,
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
    suite = SuiteId(args.variant)
    mex, usa = _agency(SENDER, suite), _agency(RECIPIENT, suite)
    sink = open_sink(f"sqlite:{Path(args.workdir) / (args.group + '.db')}")
    secure = SecureConsumer(
        bootstrap=args.bootstrap, recipient=usa, trust=InMemoryTrust.of(mex, usa), sink=sink,
        group_id=args.group, topic_prefix=args.prefix,
        handler=lambda item, _record: seen(item.record_id),
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
