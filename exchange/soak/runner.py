"""Orchestration of ``exchange soak``: a steady paced load through producer, broker and
consumer, watched interval by interval.

The consumer (:mod:`exchange.soak.worker`) joins first; the producer then publishes
``rate * duration`` records on a schedule that begins a few seconds later (so its start-up
is not charged to the first records). At every reporting boundary this process samples the
RSS of the producer, the consumer and the broker JVM, reads both workers' counters and turns
them into an :class:`~exchange.soak.stats.IntervalRow`. Once the producer is done and the
consumer has stored everything the broker accepted (or made no progress for
``drain_timeout``), the consumer is stopped and the sink is counted.

Unstable module: :mod:`exchange.cli.soak` is its caller.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from exchange.bench.runner import wait_joined
from exchange.bench.workload import SENDER, topic_for
from exchange.errors import BrokerError
from exchange.producers.secure import exchange_topic_spec
from exchange.sinks import open_sink
from exchange.soak.stats import (
    Accounting,
    Counters,
    IntervalRow,
    LatencyHistogram,
    RssTrend,
    interval_row,
)
from exchange.topics import ensure_topics

__all__ = ["Live", "SoakPlan", "SoakRun", "run_soak", "shown_sink", "sink_url"]

#: Seconds between starting the producer and the first scheduled record.
_LEAD_S = 3.0
#: How long after a boundary this process waits for the workers' lines of that interval.
_GRACE_S = 0.5
_ROLES = ("producer", "consumer", "broker")


@dataclass(frozen=True)
class SoakPlan:
    """What one soak does.

    Attributes:
        bootstrap: the broker.
        suite: the suite every envelope is sealed on.
        rate: offered msgs/s.
        duration: seconds of scheduled load (``rate * duration`` records).
        interval: seconds between report rows.
        audit: whether both agencies keep audit logs (with receipts) during the run.
        sink: the consumer's sink URL (:func:`sink_url`).
        workdir: where the workers' status files, sinks and audit logs go.
        broker_pid: the broker JVM to sample (None: not local, not sampled).
        pool: distinct seeded records cycled through.
        partitions: partitions of the exchange topic.
        drain_timeout: give up on the consumer after this many seconds without progress.
    """

    bootstrap: str
    suite: str
    rate: float
    duration: float
    interval: float
    audit: bool
    sink: str
    workdir: Path
    broker_pid: int | None = None
    pool: int = 500
    partitions: int = 3
    drain_timeout: float = 120.0

    @property
    def records(self) -> int:
        return max(1, round(self.rate * self.duration))

    @property
    def audit_root(self) -> Path:
        return self.workdir / "audit"


def sink_url(choice: str, workdir: Path) -> str:
    """``sqlite`` or ``jsonl``: a fresh store under ``workdir``; anything else is a sink URL
    (``sqlite:PATH``, ``jsonl:DIR``, ``postgresql://...``) used as is."""
    if choice == "sqlite":
        return f"sqlite:{workdir / 'soak-sink.db'}"
    if choice == "jsonl":
        return f"jsonl:{workdir / 'soak-sink'}"
    return choice


def shown_sink(url: str) -> str:
    """``url`` as reports show it: a password in a database URL is masked."""
    return re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", url)


@dataclass
class Live:
    """Running totals, for the progress bar."""

    scheduled: int
    published: int = 0
    accepted: int = 0
    delivered: int = 0
    quarantined: int = 0
    last_p99_ms: float | None = None
    phase: str = "starting"


@dataclass
class SoakRun:
    """What a soak measured (the figures come from :mod:`exchange.soak.stats`)."""

    plan: SoakPlan
    prefix: str
    rows: list[IntervalRow]
    accounting: Accounting
    latency: LatencyHistogram
    rss: dict[str, RssTrend]
    peak_rss: dict[str, int | None]
    #: Seconds from the first record's due time until the consumer stored the last one.
    elapsed: float
    errors: list[str] = field(default_factory=list)


class _Worker:
    """A worker process and the status lines it has written so far."""

    def __init__(self, plan: SoakPlan, role: str, argv: list[str]) -> None:
        self.role = role
        self.out = plan.workdir / f"{role}.jsonl"
        self.out.write_text("")
        command = [sys.executable, "-m", "exchange.soak.worker", role, *argv,
                   "--out", str(self.out)]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        self.lines: list[dict[str, Any]] = []
        self._read = 0
        self._taken = -1

    def refresh(self) -> None:
        with self.out.open("rb") as f:
            f.seek(self._read)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._read += len(complete)
        self.lines += [json.loads(line) for line in complete.splitlines() if line.strip()]

    def latest(self, key: str, default: int = 0) -> int:
        return int(self.lines[-1].get(key, default)) if self.lines else default

    def line(self, k: int) -> dict[str, Any] | None:
        """The newest line for an interval up to ``k`` not taken before (a worker that wrote
        late labels its line with a later interval; a row never reuses a line)."""
        found = next(
            (ln for ln in reversed(self.lines) if self._taken < ln.get("k", -1) <= k), None
        )
        if found is not None:
            self._taken = int(found["k"])
        return found

    def skip_before(self, k: int) -> None:
        """Lines of intervals before ``k`` are never rows (the schedule had not begun)."""
        self._taken = max(self._taken, k - 1)

    @property
    def final(self) -> dict[str, Any] | None:
        return self.lines[-1] if self.lines and self.lines[-1].get("final") else None

    def rss(self) -> int | None:
        return _rss(self.process.pid) if self.process.poll() is None else None


def _rss(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return None


def run_soak(plan: SoakPlan, on_row: Callable[[IntervalRow, Live], None]) -> SoakRun:
    """Run the soak (module docstring); ``on_row`` is called with each interval's row.

    Raises:
        BrokerError: the consumer never joined its group, or a worker died without a
            final report.
    """
    prefix = f"soak{uuid.uuid4().hex[:10]}."
    ensure_topics(
        plan.bootstrap,
        [exchange_topic_spec(topic_for(plan.suite, prefix), partitions=plan.partitions)],
    )
    common = ["--suite", plan.suite, "--bootstrap", plan.bootstrap, "--prefix", prefix,
              "--rate", str(plan.rate), "--interval", str(plan.interval)]  # fmt: skip
    if plan.audit:
        common += ["--audit-root", str(plan.audit_root)]
    live = Live(plan.records)
    group = f"{prefix}consumer"
    grid_ns = time.time_ns()  # the consumer reports at grid_ns + k * interval
    consumer = _Worker(plan, "consume", [*common, "--group", group, "--sink", plan.sink,
                                         "--start-ns", str(grid_ns)])  # fmt: skip
    try:
        live.phase = "waiting for the consumer to join"
        wait_joined(plan.bootstrap, group, consumer.process)
    except BaseException:
        consumer.process.kill()
        raise
    # The schedule begins on a boundary of the consumer's grid, _LEAD_S from now or later.
    interval_ns = int(plan.interval * 1e9)
    skipped = -(-(time.time_ns() + int(_LEAD_S * 1e9) - grid_ns) // interval_ns)
    return _Watch(
        plan, prefix=prefix, consumer=consumer, start_ns=grid_ns + skipped * interval_ns,
        consumer_offset=skipped, live=live, on_row=on_row, common=common,
    ).run()  # fmt: skip


class _Watch:
    """The sampling loop of one soak, from the producer's start to the sink's count."""

    def __init__(
        self, plan: SoakPlan, *, prefix: str, consumer: _Worker, start_ns: int,
        consumer_offset: int, live: Live, on_row: Callable[[IntervalRow, Live], None],
        common: list[str],
    ) -> None:  # fmt: skip
        self.plan, self.prefix, self.consumer, self.live, self.on_row = (
            plan, prefix, consumer, live, on_row,
        )  # fmt: skip
        self.start_ns = start_ns
        #: The consumer's line ``k + consumer_offset`` covers this interval ``k``.
        self.consumer_offset = consumer_offset
        consumer.skip_before(consumer_offset)
        self.producer = _Worker(plan, "produce", [*common, "--count", str(plan.records),
                                                  "--pool", str(plan.pool),
                                                  "--start-ns", str(start_ns)])  # fmt: skip
        self.rows: list[IntervalRow] = []
        self.samples: dict[str, list[tuple[float, int]]] = {r: [] for r in _ROLES}
        self.before = Counters(0, 0, 0)
        self.errors: list[str] = []

    def run(self) -> SoakRun:
        try:
            last_stored_ns = self._watch()
        finally:
            self._stop()
        return self._result(last_stored_ns)

    def _watch(self) -> int:
        plan, live = self.plan, self.live
        live.phase = "load"
        k = 0
        progress_at, progress = time.monotonic(), -1
        while True:
            boundary = self.start_ns + int((k + 1) * plan.interval * 1e9)
            _sleep_until(boundary)
            rss = {"producer": self.producer.rss(), "consumer": self.consumer.rss(),
                   "broker": _rss(plan.broker_pid)}  # fmt: skip
            _sleep_until(boundary + int(_GRACE_S * 1e9))
            self.producer.refresh()
            self.consumer.refresh()
            self._row(k, rss)
            k += 1
            done = self.producer.final is not None or self.producer.process.poll() is not None
            if done:
                live.phase = "draining"
            if live.delivered + live.quarantined != progress:
                progress_at, progress = time.monotonic(), live.delivered + live.quarantined
            if self.consumer.process.poll() is not None:
                self.errors.append(
                    f"the consumer exited early (exit {self.consumer.process.returncode})"
                )
                return time.time_ns()
            if done and progress >= live.accepted:
                return time.time_ns()
            if done and time.monotonic() - progress_at > plan.drain_timeout:
                self.errors.append(
                    f"the consumer stored nothing for {plan.drain_timeout:.0f} s with "
                    f"{live.accepted - progress} record(s) outstanding"
                )
                return time.time_ns()

    def _row(self, k: int, rss: dict[str, int | None]) -> None:
        plan, live = self.plan, self.live
        t_s = (k + 1) * plan.interval
        live.published = self.producer.latest("published", live.published)
        live.accepted = self.producer.latest("accepted", live.accepted)
        live.delivered = self.consumer.latest("delivered", live.delivered)
        live.quarantined = self.consumer.latest("quarantined", live.quarantined)
        offered = min(plan.records, max(0, int(t_s * plan.rate) + 1))
        after = Counters(offered, live.accepted, live.delivered)
        latency = self.consumer.line(k + self.consumer_offset) or {}
        row = interval_row(t_s, plan.interval, before=self.before, after=after,
                           latency=latency, rss=rss)  # fmt: skip
        self.before = after
        live.last_p99_ms = row.p99_ms
        for role, value in rss.items():
            if value is not None:
                self.samples[role].append((t_s, value))
        self.rows.append(row)
        self.on_row(row, live)

    def _stop(self) -> None:
        self.live.phase = "stopping"
        # Both stop on SIGTERM: the producer (only still running when the soak was cut
        # short) dies; the consumer finishes its batch, closes its audit log and reports.
        for worker in (self.producer, self.consumer):
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for worker in (self.producer, self.consumer):
            try:
                code = worker.process.wait(timeout=max(60.0, self.plan.drain_timeout))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                code = worker.process.wait()
            worker.refresh()
            if code != 0:
                self.errors.append(f"the {worker.role} process exited {code}; see stderr")

    def _result(self, last_ns: int) -> SoakRun:
        produced, consumed = self.producer.final, self.consumer.final
        if produced is None or consumed is None:
            missing = "producer" if produced is None else "consumer"
            raise BrokerError(f"the soak's {missing} process ended without its final report; "
                              f"see stderr ({'; '.join(self.errors)})")  # fmt: skip
        self.live.phase = "counting the sink"
        rows, distinct = _count_sink(self.plan.sink, self.prefix)
        accounting = Accounting(
            scheduled=self.plan.records, accepted=int(produced["accepted"]),
            failed=int(produced["failed"]) + self.plan.records - int(produced["published"]),
            delivered=int(consumed["delivered"]), stored_rows=rows, stored_distinct=distinct,
            consumer_duplicates=int(consumed["duplicates"]),
            quarantined=int(consumed["quarantined"]),
        )  # fmt: skip
        return SoakRun(
            plan=self.plan, prefix=self.prefix, rows=self.rows, accounting=accounting,
            latency=LatencyHistogram.from_json(consumed.get("latency", {})),
            rss={role: RssTrend(tuple(s)) for role, s in self.samples.items()},
            peak_rss={"producer": produced.get("peak_rss"), "consumer": consumed.get("peak_rss"),
                      "broker": None},
            elapsed=(int(consumed.get("last_stored_ns") or last_ns) - self.start_ns) / 1e9,
            errors=self.errors,
        )  # fmt: skip


def _count_sink(url: str, prefix: str) -> tuple[int, int]:
    """Rows this run stored (its topics are under ``prefix``) and their distinct record ids."""
    rows, ids = 0, set()
    with open_sink(url) as sink:
        for record in sink.records():
            if record.topic.startswith(prefix) and record.sender == SENDER:
                rows += 1
                ids.add(record.record_id)
    return rows, len(ids)


def _sleep_until(wall_ns: int) -> None:
    delay = (wall_ns - time.time_ns()) / 1e9
    if delay > 0:
        time.sleep(delay)
