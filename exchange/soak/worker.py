"""One soak role in its own process: ``python -m exchange.soak.worker ROLE ...``.

* ``produce``: the sender's ``SecureProducer``, paced open loop at ``--rate`` from
  ``--start-ns`` until ``--count`` records are published, then flushed;
* ``consume``: the recipient's ``SecureConsumer`` into ``--sink`` until SIGTERM.

With ``--audit-root`` each keeps its agency's audit log there (publish entries; delivery
entries and signed receipts), published to its audit topic, as a deployment does.

Both append one JSON object per line to ``--out``: a status line at each reporting boundary
``start + k * interval`` (cumulative counts; the consumer adds the latency of what it stored
in interval ``k``), written by a thread so it is on time, and a last line with
``"final": true``.
Keys, records and clients come from :mod:`exchange.bench.workload`. Unstable module: the
soak runner is its only caller.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from exchange._internal.heap import settle_heap_for_streaming
from exchange.audit.agency import AgencyAudit
from exchange.audit.witnessing import AuditHome
from exchange.audit_bus import AuditTopicWriter
from exchange.bench.workload import (
    RECIPIENT,
    SENDER,
    Keys,
    keys,
    paced,
    peak_rss,
    record_pool,
    records,
    secure_consumer,
    secure_producer,
    secure_publisher,
)
from exchange.crypto.keys import SuiteId
from exchange.records import ExchangeRecord
from exchange.sinks import DeliveredRecord, open_sink
from exchange.soak.stats import LatencyHistogram, soak_record_id, split_record_id, window_latency

__all__ = ["main", "period_ns"]

_POLL_S = 0.2
_log = logging.getLogger("exchange.soak")


def period_ns(rate: float) -> int:
    """Nanoseconds between two scheduled records (as :func:`exchange.bench.workload.paced`)."""
    return int(1e9 / rate)


class _Status:
    """Writes a status line to the ``--out`` file at every reporting boundary, from its own
    thread, so a line is on time even while the role is inside a long batch."""

    def __init__(
        self, out: TextIO, start_ns: int, interval_s: float, snapshot: Callable[[], dict[str, Any]]
    ) -> None:
        self._out = out
        self._start = start_ns
        self._interval = int(interval_s * 1e9)
        self._snapshot = snapshot
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-status", daemon=True)

    def __enter__(self) -> _Status:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        k = max(0, (time.time_ns() - self._start) // self._interval)
        while True:
            boundary = self._start + (k + 1) * self._interval
            if self._stopped.wait(max(0.0, (boundary - time.time_ns()) / 1e9)):
                return
            self.write({"k": k, **self._snapshot()})
            k += 1

    def write(self, line: dict[str, Any]) -> None:
        with self._lock:
            self._out.write(json.dumps(line) + "\n")
            self._out.flush()


@contextmanager
def _audit(args: argparse.Namespace, agency: str, held: Keys) -> Iterator[AgencyAudit | None]:
    if not args.audit_root:
        yield None
        return
    provider = held.sender if agency == SENDER else held.recipient
    writer = AuditTopicWriter(bootstrap=args.bootstrap, agency_id=agency, topic_prefix=args.prefix)
    with AgencyAudit.open(AuditHome(Path(args.audit_root)).log_dir(agency), provider,
                          publisher=writer) as audit:  # fmt: skip
        yield audit


def produce(args: argparse.Namespace, out: TextIO) -> None:
    """Publish ``--count`` records on the schedule, then flush."""
    suite = SuiteId(args.suite)
    held = keys(suite)
    period = period_ns(args.rate)
    pool: list[ExchangeRecord] = record_pool(args.pool)
    stream = records(pool, args.count, lambda i: soak_record_id(i, args.start_ns + i * period))
    with ExitStack() as stack:
        audit = stack.enter_context(_audit(args, SENDER, held))
        producer = secure_producer(args.bootstrap, held, suite, args.prefix, audit=audit)
        publisher = secure_publisher(producer)
        published = [0]

        def counts() -> dict[str, Any]:
            summary = producer.summary
            return {
                "published": published[0], "accepted": summary.delivered,
                "failed": len(summary.failed),
            }  # fmt: skip

        def on_due(i: int, _rid: str, _due: int) -> None:
            published[0] = i

        if time.time_ns() > args.start_ns:
            _log.warning("the producer was ready %.1f s after the schedule began (start-up "
                         "counts as latency)", (time.time_ns() - args.start_ns) / 1e9)  # fmt: skip
        status = stack.enter_context(_Status(out, args.start_ns, args.interval, counts))
        settle_heap_for_streaming()  # the same collector settings as the consumer
        try:
            paced(args.rate, stream, publisher, on_due, start_ns=args.start_ns)
            published[0] = args.count
            publisher.close()  # seals the last batch and waits for every delivery report
        finally:
            status.write({"final": True, **counts(), "peak_rss": peak_rss()})


def consume(args: argparse.Namespace, out: TextIO) -> None:
    """Store what arrives until SIGTERM; latency = store time - the record's due time."""
    stop = [False]

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, on_term)
    held = keys(SuiteId(args.suite))
    window: list[float] = []
    last_stored = [0]
    histogram = LatencyHistogram()
    lock = threading.Lock()  # the window is swapped by the status thread

    def stored(item: DeliveredRecord, _record: ExchangeRecord) -> None:
        _index, due = split_record_id(item.record_id)
        last_stored[0] = time.time_ns()
        ms = (last_stored[0] - due) / 1e6
        with lock:
            window.append(ms)
        histogram.add(ms)

    with ExitStack() as stack:
        sink = stack.enter_context(open_sink(args.sink))
        audit = stack.enter_context(_audit(args, RECIPIENT, held))
        made = secure_consumer(
            args.bootstrap, held, sink=sink, group=args.group, prefix=args.prefix,
            handler=stored, audit=audit,
        )  # fmt: skip
        consumer = stack.enter_context(made)

        def counts() -> dict[str, Any]:
            summary = consumer.summary
            return {
                "delivered": summary.delivered, "duplicates": summary.duplicates,
                "quarantined": summary.quarantined_total, "last_stored_ns": last_stored[0],
            }  # fmt: skip

        def interval() -> dict[str, Any]:
            with lock:
                taken = window[:]
                window.clear()
            return {**counts(), **window_latency(taken)}

        parent = os.getppid()
        settle_heap_for_streaming()  # as `exchange consume` does
        with _Status(out, args.start_ns, args.interval, interval) as status:
            # Stops on SIGTERM, or when the soak that started it is gone.
            while not stop[0] and os.getppid() == parent:
                consumer.poll_batch(_POLL_S)
        final = {"final": True, **counts(), "latency": histogram.to_json()}
    final["peak_rss"] = peak_rss()
    status.write(final)  # after the audit log's closing checkpoint


def main(argv: list[str] | None = None) -> int:
    """Run one role; its lines go to ``--out``."""
    parser = argparse.ArgumentParser(prog="python -m exchange.soak.worker")
    parser.add_argument("role", choices=["produce", "consume"])
    parser.add_argument("--suite", required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--start-ns", type=int, required=True)
    parser.add_argument("--interval", type=float, required=True)
    parser.add_argument("--pool", type=int, default=500)
    parser.add_argument("--group", default="soak")
    parser.add_argument("--sink", default="")
    parser.add_argument("--audit-root", default="")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    # Workers share the terminal with the progress bar: warnings and errors only.
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    with Path(args.out).open("a", encoding="utf-8") as out:
        (produce if args.role == "produce" else consume)(args, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
