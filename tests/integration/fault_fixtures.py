"""Fixtures and helpers of the fault tests on a three-node cluster (``test_faults_*.py``).

The cluster is the project's own jar-based runtime (``exchange broker up --nodes 3``:
replication factor 3, ``min.insync.replicas=2``, unclean leader election off), started once
per test module in a temporary home on free ports and stopped at the end; a cluster that
cannot start fails the tests, it never skips them. Each test gets its own
``EXCHANGE_HOME`` (a copy of the session's PKI, its own audit logs and witness state) and
topic prefix, so the audit trail a test verifies is that test's alone.

Records follow the secure path end to end: a :class:`SecureProducer` with the sender's audit
log (published to its audit topic, as ``exchange publish`` opens it), ``exchange consume`` as
a real process into a SQLite sink with the recipient's audit log, then receipts collected,
both countries' witnesses cosigning and ``exchange audit verify --json`` over the whole run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from exchange.audit import WitnessPolicy, decode_entry
from exchange.audit.agency import AgencyAudit, locked_log
from exchange.audit.entry import EntryKind, Outcome
from exchange.audit.witnessing import AuditHome, write_witness_policies
from exchange.audit_bus import AuditTopicWriter, collect_receipts_from_bus
from exchange.broker import (
    BrokerStartError,
    PortInUseError,
    ensure_cluster,
    find_free_base_port,
    stop_cluster,
)
from exchange.crypto.pki import DEMO_AGENCIES, FileKeyProvider, PkiLayout
from exchange.errors import ExchangeError
from exchange.kafka_clients import KAFKA_LOGGER
from exchange.producers.secure import SecureProducer
from exchange.records import ExchangeRecord
from exchange.records.sample import generate_corpus
from exchange.routing import RoutingRule, RoutingTable, parse_exchange_topic
from exchange.sinks import DeliveredRecord
from tests.integration.secure_fixtures import (
    AGENCIES,
    Pki,
    cli_env,
    new_prefix,
    readdressed,
    witness_all,
)

__all__ = [
    "RECIPIENT",
    "SENDER",
    "AuditCounts",
    "Cluster",
    "Exchange",
    "Publisher",
    "audit_counts",
    "consume_command",
    "exchange_home",
    "exchange_partitions",
    "record_stream",
    "three_nodes",
    "verify_exchange",
]

SENDER, RECIPIENT = "MEX-FGR", "USA-ATF"
#: Namespace of the fresh record ids given to each copy of the seeded pool.
_IDS = uuid.UUID("3f0d2b7e-6a51-4c1e-9f3a-0c6b1d9e5a42")
#: Where the search for free ports starts: away from the session broker's (29092 up) and the
#: binational profile's (29400 up), which other test modules start at the same time, and
#: below the kernel's ephemeral range (see ``find_free_base_port``), so a node restarted
#: after SIGKILL finds its ports free.
_PORTS_FROM = 31092
_START_ATTEMPTS = 3
#: Longest a whole-cluster or single-node start may take on a loaded two-core machine.
START_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Cluster:
    """A running three-node cluster: its broker home, bootstrap and an AdminClient."""

    home: Path
    bootstrap: str
    admin: AdminClient


@pytest.fixture(scope="module")
def three_nodes(
    kafka_libs_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """A three-node KRaft cluster for this module, stopped (data deleted) at its end."""
    home = tmp_path_factory.mktemp("three-nodes")
    info = None
    for _attempt in range(_START_ATTEMPTS):
        try:
            info = ensure_cluster(
                home, nodes=3, base_port=find_free_base_port(3, start=_PORTS_FROM),
                libs_cache=kafka_libs_cache, timeout=START_TIMEOUT_S,
            )  # fmt: skip
            break
        except (PortInUseError, BrokerStartError) as exc:
            # Other test sessions on this machine pick free ports too; one may have taken
            # ours between the check and the bind. Anything else fails at once.
            failure = exc
            stop_cluster(home)
        except ExchangeError as exc:
            stop_cluster(home)
            pytest.fail(f"the three-node cluster did not start: {exc.diagnostics()}")
    if info is None:
        pytest.fail(f"the three-node cluster did not start: {failure.diagnostics()}")
    try:
        # Its connection errors while nodes are down go to logging, not to the terminal.
        config: dict[str, Any] = {"bootstrap.servers": info.bootstrap, "logger": KAFKA_LOGGER}
        admin = AdminClient(config)
        yield Cluster(home, info.bootstrap, admin)
    finally:
        stop_cluster(home)


# -- one test's exchange: home, prefix, audit ------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One test's ``EXCHANGE_HOME`` (PKI copy, audit logs, witnesses) and topic prefix."""

    home: Path
    prefix: str
    bootstrap: str
    pki: Pki

    @property
    def audit(self) -> AuditHome:
        return AuditHome(self.home / "audit")

    def keys(self, agency: str) -> FileKeyProvider:
        return self.pki.keys(agency)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of an ``exchange`` subprocess acting in this exchange."""
        return {**os.environ, **cli_env(self.pki, self.bootstrap, self.prefix, **extra),
                "EXCHANGE_HOME": str(self.home)}  # fmt: skip

    def open_audit(self, agency: str) -> AgencyAudit:
        """``agency``'s audit log, published to its audit topic (as the CLI opens it)."""
        writer = AuditTopicWriter(
            bootstrap=self.bootstrap, agency_id=agency, topic_prefix=self.prefix
        )
        return AgencyAudit.open(self.audit.log_dir(agency), self.keys(agency), publisher=writer)

    def producer(self, audit: AgencyAudit, **options: Any) -> SecureProducer:
        """A producer for :data:`SENDER` with ``audit`` (routing: anyone, handling decides)."""
        routing = RoutingTable(rules=[RoutingRule(senders=["*"], recipients=list(AGENCIES))])
        return SecureProducer(
            bootstrap=self.bootstrap, sender=self.keys(SENDER), trust=self.pki.trust,
            routing=routing, topic_prefix=self.prefix, audit=audit, **options,
        )  # fmt: skip


def exchange_home(pki: Pki, directory: Path, bootstrap: str) -> Exchange:
    """A fresh exchange home under ``directory``: the session's PKI and the demo's witness
    policy (each country's logs cosigned by two of the other country's demo agencies)."""
    home = directory / "home"
    shutil.copytree(PkiLayout(pki.home).root, PkiLayout(home).root)
    ex = Exchange(home, new_prefix(), bootstrap, pki)
    write_witness_policies(
        ex.audit.policy_path,
        {
            "MEX": WitnessPolicy(frozenset(a for a in DEMO_AGENCIES if a.startswith("USA")), 2),
            "USA": WitnessPolicy(frozenset(a for a in DEMO_AGENCIES if a.startswith("MEX")), 2),
        },
    )
    return ex


# -- records ---------------------------------------------------------------------------------


def record_stream(count: int, *, seed: int, cases: int = 40) -> Iterator[ExchangeRecord]:
    """``count`` records from :data:`SENDER` to :data:`RECIPIENT`: a seeded corpus of every
    family cycled, each copy with its own record id (so its own message), cheap to make."""
    pool = [readdressed(r, SENDER, RECIPIENT) for r in generate_corpus(seed, cases=cases).records()]
    for i in range(count):
        base = pool[i % len(pool)]
        meta = base.meta.model_copy(update={"record_id": str(uuid.uuid5(_IDS, f"{seed}/{i}"))})
        yield base.model_copy(update={"meta": meta})


def pool_size(seed: int, *, cases: int = 40) -> int:
    """How many records :func:`record_stream` cycles over (every topic exists after them)."""
    return len(generate_corpus(seed, cases=cases).records())


@dataclass
class Publisher:
    """Publishes records from a thread, pausing at ``gates`` (index -> event) until the test
    has done what it must do at that point of the stream; then flushes.

    The test reads ``producer.summary`` while it runs; ``error`` holds what the thread raised.
    """

    producer: SecureProducer
    records: Iterator[ExchangeRecord]
    gates: Mapping[int, threading.Event] = field(default_factory=dict)
    gate_timeout: float = 300.0
    #: Poll the producer while waiting at a gate (a service idles so; ``exchange publish``
    #: never does).
    idle_poll: bool = False
    #: Flush before waiting at the first gate: everything sent so far is acknowledged
    #: before the fault, so nothing is in flight when it strikes.
    flush_at_first_gate: bool = False
    error: BaseException | None = None
    #: The gate the thread waits at now (after any flush there), else None.
    waiting_at: int | None = None
    flushed_at: float | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for i, record in enumerate(self.records):
                self._pass_gate(i)
                self.producer.publish(record)
            self.producer.flush()
            self.flushed_at = time.monotonic()
        except BaseException as exc:  # noqa: BLE001  # handed to the test thread
            self.error = exc

    def _pass_gate(self, index: int) -> None:
        gate = self.gates.get(index)
        if gate is None:
            return
        if self.flush_at_first_gate and index == min(self.gates):
            self.producer.flush()
        self.waiting_at = index
        deadline = time.monotonic() + self.gate_timeout
        while not gate.wait(0.05):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the test never opened the gate at record {index}")
            if self.idle_poll:
                self.producer.poll(0.0)  # serve delivery reports, pump the outbox
        self.waiting_at = None

    def join(self, timeout: float) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the publisher did not finish within {timeout} s"
        if self.error is not None:
            raise AssertionError(f"the publisher failed: {self.error!r}") from self.error

    @property
    def accepted(self) -> int:
        return self.producer.summary.accepted


# -- the cluster's view ----------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionState:
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


def exchange_partitions(cluster: Cluster, prefix: str) -> dict[tuple[str, int], PartitionState]:
    """Leader, replicas and ISR of every partition of the exchange topics under ``prefix``
    (not the audit, receipt and quarantine topics), as the cluster's metadata says now."""
    metadata: Any = cluster.admin.list_topics(timeout=10)
    found: dict[tuple[str, int], PartitionState] = {}
    for name, topic in metadata.topics.items():
        if parse_exchange_topic(name, prefix=prefix) is None:
            continue
        for p in topic.partitions.values():
            found[(name, p.id)] = PartitionState(p.leader, tuple(p.replicas), tuple(p.isrs))
    return found


# -- the consumer ----------------------------------------------------------------------------


def consume_command(sink: Path, group: str, *extra: str) -> list[str]:
    """``exchange -v consume`` as :data:`RECIPIENT` into ``sink`` (static membership, so a
    restarted process takes its partitions back at once); ``-v`` logs the sink's
    transactions at DEBUG."""
    return [
        sys.executable, "-m", "exchange", "-v", "consume", "--as", RECIPIENT,
        "--sink", f"sqlite:{sink}", "--group", group, "--instance-id", f"{group}-1", *extra,
    ]  # fmt: skip


def check_sink(records: list[DeliveredRecord], record_ids: set[str]) -> None:
    """Every record of ``record_ids`` is stored exactly once, and nothing else is."""
    assert len(records) == len(record_ids)
    assert len({r.message_id for r in records}) == len(record_ids)
    assert {r.record_id for r in records} == record_ids


# -- the audit trail -------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditCounts:
    """Entries of one agency log by (kind, outcome)."""

    counts: Mapping[tuple[str, str], int]

    def of(self, kind: EntryKind, outcome: Outcome = Outcome.OK) -> int:
        return self.counts.get((kind.value, outcome.value), 0)


def audit_counts(ex: Exchange, agency: str) -> AuditCounts:
    counts: dict[tuple[str, str], int] = {}
    with locked_log(ex.audit.log_dir(agency), agency) as log:
        for index in range(log.size):
            entry = decode_entry(log.entry_bytes(index))
            key = (entry.kind.value, entry.outcome.value)
            counts[key] = counts.get(key, 0) + 1
    return AuditCounts(counts)


def verify_exchange(ex: Exchange) -> dict[str, Any]:
    """Close the audit loop as operators do, then ``exchange audit verify --json``.

    The sender logs the receipts on its receipt topic (``exchange audit collect``), every
    demo agency cosigns the other country's checkpoints (``exchange audit witness``), and the
    verifier checks every log, envelope, offset and receipt. Returns its JSON output
    (``ok``, ``stats``, ``findings``) after checking its exit code agrees with it.
    """
    began = time.monotonic()
    with ex.open_audit(SENDER) as audit:
        collect_receipts_from_bus(
            audit, bootstrap=ex.bootstrap, trust=ex.pki.trust, topic_prefix=ex.prefix
        )
    collected = time.monotonic()
    refused = [o for o in witness_all(ex.pki, ex.audit) if o.refused]
    assert refused == [], refused
    witnessed = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "exchange", "audit", "verify", "--json"],
        env=ex.env(), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == (0 if result["ok"] else 1), done.stderr
    result["seconds"] = {
        "collect": round(collected - began, 2), "witness": round(witnessed - collected, 2),
        "verify": elapsed(witnessed),
    }  # fmt: skip
    return result


def elapsed(since: float) -> float:
    """Seconds since ``since`` (a :func:`time.monotonic` reading), rounded for reports."""
    return round(time.monotonic() - since, 2)


Check = Callable[[], bool]
