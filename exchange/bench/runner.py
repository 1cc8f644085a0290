"""Orchestration of ``exchange bench``: a broker, then every variant through three phases.

Per variant (plain Avro, then each suite), each role in its own process
(:mod:`exchange.bench.worker`), on topics under a fresh prefix so no phase sees another's data:

1. **closed loop**: a consumer joins, then a producer publishes ``records`` records as fast as
   it can; producer msgs/s (first publish to last delivery report) and end-to-end msgs/s
   (first publish to last record consumed) come from this phase;
2. **drain**: a fresh consumer group reads the full topic; consumer msgs/s;
3. **paced**: a consumer joins, then a producer publishes at ``rate`` msgs/s for ``seconds``
   seconds, open loop; per-record latency = consume time - scheduled send time.

Unstable module: :mod:`exchange.cli.bench` is its caller.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from exchange.bench.report import kafka_version
from exchange.bench.stats import (
    VARIANTS,
    ConsumerRun,
    MemoryCheck,
    PacedRun,
    ProducerRun,
    VariantResult,
)
from exchange.bench.workload import topic_for
from exchange.broker import (
    ClusterInfo,
    cluster_status,
    ensure_cluster,
    find_free_base_port,
    stop_cluster,
)
from exchange.errors import BrokerError
from exchange.producers.secure import exchange_topic_spec
from exchange.settings import ExchangeSettings
from exchange.topics import ensure_topics

__all__ = [
    "BenchPlan",
    "Broker",
    "local_cluster",
    "run_broker",
    "run_memory_check",
    "run_paced",
    "run_variant",
    "wait_joined",
    "warm_up",
]

#: Progress callback: called with a short description before each step.
Step = Callable[[str], None]
_JOIN_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class BenchPlan:
    """What one run measures.

    Attributes:
        bootstrap: the broker.
        records: records per closed-loop and drain phase.
        rate: offered rate of the paced phase, msgs/s.
        seconds: duration of the paced phase.
        pool: distinct seeded records cycled through (each message gets its own record id).
        partitions: partitions of every topic (as ``SecureProducer`` creates them).
        workdir: where workers put their results and the secure consumers their SQLite sinks.
    """

    bootstrap: str
    records: int
    rate: float
    seconds: float
    pool: int
    partitions: int
    workdir: Path


_POM = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "pom.xml"


@dataclass(frozen=True)
class Broker:
    """The broker a run uses: its address, its Kafka version (for the docs) and the pid of
    its JVM when it is a local one-node broker (None otherwise)."""

    bootstrap: str
    kafka: str
    pid: int | None


@contextmanager
def run_broker(settings: ExchangeSettings) -> Iterator[Broker]:
    """``EXCHANGE_BOOTSTRAP`` when set (its JVM pid when it is the local broker under
    ``EXCHANGE_HOME``); else a :func:`local_cluster`, stopped on exit.

    Raises:
        ExchangeError: the local broker did not start.
    """
    if settings.bootstrap:
        status = cluster_status(settings.home)
        local = status.bootstrap == settings.bootstrap and len(status.nodes) == 1
        pid = status.nodes[0].pid if local else None
        yield Broker(settings.bootstrap, "(external broker, version not queried)", pid)
        return
    with local_cluster(settings.home / "kafka" / "libs") as info:
        yield Broker(info.bootstrap, kafka_version(_POM), info.nodes[0].pid)


@contextmanager
def local_cluster(libs_cache: Path | None) -> Iterator[ClusterInfo]:
    """A one-node broker in a temporary ``EXCHANGE_HOME`` on free ports; stopped on exit.

    The home is removed after a clean run and kept when the broker failed, so the log the
    error names is still there.

    Raises:
        ExchangeError: the broker did not start (it is stopped before the error propagates).
    """
    home = Path(tempfile.mkdtemp(prefix="exchange-bench-home-"))
    try:
        base_port = find_free_base_port(1)
        yield ensure_cluster(home, nodes=1, base_port=base_port, libs_cache=libs_cache)
    except BaseException:
        stop_cluster(home)
        raise
    stop_cluster(home)
    shutil.rmtree(home, ignore_errors=True)


def run_variant(plan: BenchPlan, variant: str, step: Step) -> VariantResult:
    """Run the three phases of one variant (module docstring).

    Raises:
        BrokerError: a worker failed or a consumer never joined its group.
    """
    if variant not in VARIANTS:
        raise ValueError(f"got variant {variant!r}, expected one of {', '.join(VARIANTS)}")
    step(f"{variant}: closed loop, {plan.records} records")
    prefix = _prefix()
    _create_topic(plan, variant, prefix)
    consumed, produced = _together(plan, variant, prefix, plan.records, rate=0.0)
    step(f"{variant}: drain, {plan.records} records")
    drained = ConsumerRun.from_json(
        _wait(_consumer(plan, variant, prefix, plan.records, times=False), "drain consumer")
    )
    paced = run_paced(plan, variant, plan.rate, step)
    return VariantResult(variant, plan.records, produced, consumed, drained, paced)


def run_paced(plan: BenchPlan, variant: str, rate: float, step: Step) -> PacedRun:
    """Phase 3 alone, at ``rate`` msgs/s for ``plan.seconds``, on a fresh topic: the main
    run's paced phase, and each rate of a ``--sweep``.

    Raises:
        BrokerError: a worker failed or the consumer never joined its group.
    """
    step(f"{variant}: paced, {rate:,.0f} msgs/s for {plan.seconds:.0f} s")
    prefix = _prefix()
    _create_topic(plan, variant, prefix)
    expected = max(1, int(rate * plan.seconds))
    consumer, producer = _together(plan, variant, prefix, expected, rate=rate)
    return PacedRun(variant, rate, expected, producer, consumer)


def warm_up(plan: BenchPlan, step: Step) -> None:
    """One unmeasured closed-loop plain run, so the broker's JIT and page cache are warm for
    every measured variant alike (otherwise the first variants pay the broker's warm-up).

    Raises:
        BrokerError: a worker failed.
    """
    step(f"warm-up: plain, {plan.records} records (not measured)")
    prefix = _prefix()
    _create_topic(plan, "plain", prefix)
    _together(plan, "plain", prefix, plan.records, rate=0.0, times=False)


def run_memory_check(plan: BenchPlan, variant: str, records: int, step: Step) -> MemoryCheck:
    """Fill a topic with ``records`` records, then drain it with one consumer that samples its
    RSS every 1,000 records.

    Draining a full topic keeps librdkafka's prefetch queue (``queued.max.messages.kbytes``)
    full from the first second, so growth after the warm-up is the consumer's own: the
    opener's root and DEK caches, the sink, the examiner.

    Raises:
        BrokerError: a worker failed.
    """
    step(f"memory: {variant}, {records} records")
    prefix = _prefix()
    _create_topic(plan, variant, prefix)
    _wait(_Worker.start(plan, "produce", variant, prefix, records), "producer")
    drained = _wait(_consumer(plan, variant, prefix, records, times=False), "memory consumer")
    return MemoryCheck(variant, records, ConsumerRun.from_json(drained))


def _prefix() -> str:
    return f"bench{uuid.uuid4().hex[:10]}."


def _create_topic(plan: BenchPlan, variant: str, prefix: str) -> None:
    # Created up front: the secure consumer subscribes by pattern and would otherwise see a
    # new topic only at its next metadata refresh.
    spec = exchange_topic_spec(topic_for(variant, prefix), partitions=plan.partitions)
    ensure_topics(plan.bootstrap, [spec])


def _together(
    plan: BenchPlan, variant: str, prefix: str, records: int, *, rate: float, times: bool = True
) -> tuple[ConsumerRun, ProducerRun]:
    consumer = _consumer(plan, variant, prefix, records, times=times)
    try:
        wait_joined(plan.bootstrap, consumer.group, consumer.process)
        producer = _Worker.start(plan, "produce", variant, prefix, records, rate=rate)
        produced = ProducerRun.from_json(_wait(producer, "producer"))
    except BaseException:
        consumer.process.kill()
        raise
    return ConsumerRun.from_json(_wait(consumer, "consumer")), produced


@dataclass(frozen=True)
class _Worker:
    process: subprocess.Popen[bytes]
    out: Path
    group: str

    @classmethod
    def start(
        cls, plan: BenchPlan, role: str, variant: str, prefix: str, records: int, *,
        rate: float = 0.0, times: bool = True,
    ) -> _Worker:  # fmt: skip
        group = f"{prefix}{role}.{uuid.uuid4().hex[:6]}"
        out = plan.workdir / f"{group}.json"
        argv = [
            sys.executable, "-m", "exchange.bench.worker", role, "--variant", variant,
            "--bootstrap", plan.bootstrap, "--prefix", prefix, "--records", str(records),
            "--rate", str(rate), "--pool", str(plan.pool), "--group", group,
            "--workdir", str(plan.workdir), "--out", str(out),
        ]  # fmt: skip
        if times:
            argv.append("--times")
        return cls(subprocess.Popen(argv, stdout=subprocess.DEVNULL), out, group)


def _consumer(plan: BenchPlan, variant: str, prefix: str, records: int, *, times: bool) -> _Worker:
    return _Worker.start(plan, "consume", variant, prefix, records, times=times)


def _wait(worker: _Worker, what: str) -> dict[str, object]:
    code = worker.process.wait()
    if code != 0 or not worker.out.exists():
        raise BrokerError(f"the benchmark's {what} process failed (exit {code}); see stderr")
    data: dict[str, object] = json.loads(worker.out.read_text())
    worker.out.unlink()
    return data


def wait_joined(bootstrap: str, group: str, process: subprocess.Popen[bytes]) -> None:
    """Wait until ``group`` is stable with a member that holds partitions."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + _JOIN_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerError(f"the consumer of {group} exited before joining its group")
        try:
            described = admin.describe_consumer_groups([group])[group].result(timeout=10)
        except Exception:  # noqa: BLE001 - not known yet: the consumer is still starting
            described = None
        if described is not None and any(
            m.assignment and m.assignment.topic_partitions for m in described.members
        ):
            return
        time.sleep(0.1)
    raise BrokerError(f"consumer group {group} did not join within {_JOIN_TIMEOUT_S:.0f} s")
