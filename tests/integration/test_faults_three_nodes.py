"""Faults on a three-node cluster: every record still lands exactly once, audited.

Issue #8, item 2. On a real three-node KRaft cluster (replication factor 3,
``min.insync.replicas=2``, from ``fault_fixtures.three_nodes``), over the secure path with
audit on at both ends:

1. the leader of an exchange partition is SIGKILLed while a producer is in the middle of a
   stream of 20,000 records, and restarted while records are still flowing;
2. all three nodes are SIGKILLed while a producer is publishing, records keep being accepted
   while nothing runs, and the cluster is brought back (an outage shorter than the
   producer's delivery timeout: librdkafka retries);
3. ``exchange consume`` is SIGKILLed ten times at seeded random points, several of them
   while its SQLite sink's write transaction is open (the sink logs each transaction's
   begin and commit at DEBUG; the test kills on a begin without a commit).

4. ``exchange consume --until-idle`` is started while all three nodes are dead.

After each: the producer's summary says every accepted record was delivered, the sink holds
every record exactly once (count, record ids, message ids), nothing was quarantined,
``exchange audit verify`` finds nothing (after the consumer kills too: each restart's
recovery logs the deliveries and resends the receipts a kill lost), and the logs count one
publish entry per accepted record and one stored delivery per record.

Run with ``-s`` to see each test's figures (records, kills, recovery times, duplicates);
``EXCHANGE_FAULT_SCALE=N`` multiplies every stream and the number of consumer kills.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin._config import ConfigResource  # admin re-exports it untyped

from exchange.audit import SignedCheckpoint
from exchange.audit.entry import EntryKind, Outcome
from exchange.audit_bus import KIND_CHECKPOINT, KIND_ENTRY, read_topic
from exchange.broker import ensure_cluster, kill_node, start_node
from exchange.metrics import ExchangeMetrics
from exchange.quarantine import read_quarantine
from exchange.sinks import open_sink
from tests.integration.conftest import WaitUntil
from tests.integration.fault_fixtures import (  # noqa: F401  # fixtures are imported explicitly, by name
    RECIPIENT,
    SENDER,
    START_TIMEOUT_S,
    Cluster,
    Exchange,
    Publisher,
    audit_counts,
    check_sink,
    consume_command,
    elapsed,
    exchange_home,
    exchange_partitions,
    pool_size,
    record_stream,
    three_nodes,
    verify_exchange,
)
from tests.integration.secure_fixtures import Pki, pki  # noqa: F401  # the session's PKI

#: Larger runs: EXCHANGE_FAULT_SCALE=N multiplies every stream and the consumer's kills.
SCALE = int(os.environ.get("EXCHANGE_FAULT_SCALE", "1"))
#: Records of the leader-kill stream (the issue asks for at least 20,000).
LEADER_STREAM = 20_000 * SCALE
#: Records of the whole-cluster outage stream.
OUTAGE_STREAM = 3_000 * SCALE
#: The outboxed outage: the producer's delivery timeout, and how long the cluster stays down.
OUTBOX_DELIVERY_TIMEOUT_MS = 5_000
OUTBOX_OUTAGE_S = 15.0
#: Records of the checkpoint-during-outage test (half before the outage's last checkpoint).
CHECKPOINT_STREAM = 200
#: Records waiting for a consumer started while the cluster is down.
IDLE_STREAM = 500 * SCALE
#: Records of the consumer-kill stream, and the consumer's batch (one sink transaction each).
CONSUMER_STREAM = 4_000 * SCALE
CONSUMER_BATCH = 25
#: How many times the consumer is SIGKILLed, and the seed of where.
CONSUMER_KILLS = 10 * SCALE
CONSUMER_KILL_SEED = 20260808

#: The consumer's start-up recovery (exchange.audit.pipeline), when it repaired something.
_RECOVERED = re.compile(
    r"recovered after a crash: (\d+) stored record\(s\) had no delivery entry "
    r"\(appended now\), (\d+) receipt\(s\) sent again"
)

_SUMMARY = re.compile(
    rf"^{RECIPIENT}: delivered (\d+), duplicates (\d+), not addressed (\d+), quarantined (\d+)",
    re.MULTILINE,
)


def _report(test: str, figures: dict[str, Any]) -> None:
    """The figures docs/reliability.md cites; visible with ``pytest -s``."""
    print(f"\nFIGURES {test} {json.dumps(figures, sort_keys=True)}")


def _summary(stdout: str) -> tuple[int, int, int, int]:
    """(delivered, duplicates, not addressed, quarantined) of ``exchange consume``."""
    match = _SUMMARY.search(stdout)
    assert match is not None, stdout
    delivered, duplicates, not_addressed, quarantined = (int(g) for g in match.groups())
    return delivered, duplicates, not_addressed, quarantined


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _fully_replicated(cluster: Cluster, prefix: str, topics: int) -> bool:
    parts = exchange_partitions(cluster, prefix)
    return len(parts) == 3 * topics and all(
        len(p.replicas) == 3 and len(p.isr) == 3 and p.leader > 0 for p in parts.values()
    )


def _check_topic_profile(cluster: Cluster, prefix: str) -> None:
    """Every exchange partition has three replicas and needs two of them in sync."""
    parts = exchange_partitions(cluster, prefix)
    assert parts
    assert all(len(p.replicas) == 3 for p in parts.values())
    topic = min(t for t, _ in parts)
    described = cluster.admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
    [entries] = [f.result(timeout=30) for f in described.values()]
    assert entries["min.insync.replicas"].value == "2"


def _check_audit(
    ex: Exchange, *, published: int, stored: set[str], copies: int = 0
) -> dict[str, Any]:
    """``exchange audit verify`` finds nothing; the logs hold one publish per accepted record
    and one stored delivery per record (a redelivery is logged as a duplicate, not as a
    second), and the sender logged a receipt for every delivery. This holds after consumer
    SIGKILLs too: the consumer's start-up recovery logs the deliveries a kill left unlogged
    and resends the receipts a kill left unsent (issue #8).

    ``copies``: envelopes on the topics beyond one per record (an outbox resend of an
    envelope that had landed), which the consumer counted as duplicates.
    """
    began = time.monotonic()
    result = verify_exchange(ex)
    assert result["findings"] == []
    assert result["ok"] is True
    assert result["stats"]["envelopes"] == published + copies
    sender = audit_counts(ex, SENDER)
    assert sender.of(EntryKind.PUBLISH) == published
    assert sender.of(EntryKind.PUBLISH, Outcome.FAILED) == 0
    recipient = audit_counts(ex, RECIPIENT)
    assert recipient.of(EntryKind.DELIVERY) == len(stored)
    assert recipient.of(EntryKind.QUARANTINE, Outcome.QUARANTINED) == 0
    assert sender.of(EntryKind.RECEIPT) >= recipient.of(EntryKind.DELIVERY)
    return {
        "audit_publish_entries": sender.of(EntryKind.PUBLISH),
        "audit_receipts_logged": sender.of(EntryKind.RECEIPT),
        "audit_deliveries": recipient.of(EntryKind.DELIVERY),
        "audit_duplicate_deliveries": recipient.of(EntryKind.DELIVERY, Outcome.DUPLICATE),
        "audit_verify_s": elapsed(began),
        "audit_phases_s": result["seconds"],
    }


def test_partition_leader_sigkilled_mid_stream_then_restarted(
    three_nodes: Cluster,  # noqa: F811  # the imported fixture
    pki: Pki,  # noqa: F811
    wait_until: WaitUntil,
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    ex = exchange_home(pki, tmp_path, three_nodes.bootstrap)
    kill_at, restart_at = LEADER_STREAM * 3 // 10, LEADER_STREAM * 6 // 10
    restart_begun = threading.Event()
    sink = tmp_path / "atf.db"
    consumer_log = tmp_path / "consume.log"
    with open_sink(f"sqlite:{sink}") as reader:  # creates the store the consumer writes
        with ex.open_audit(SENDER) as audit, ex.producer(audit) as producer:
            # The stream stops at restart_at until the restart has begun, so the node comes
            # back while records are still flowing, wherever the kill fell before it.
            pub = Publisher(
                producer, record_stream(LEADER_STREAM, seed=11), gates={restart_at: restart_begun},
                idle_poll=True,
            )  # fmt: skip
            pool = pool_size(11)
            pub.start()
            # Every exchange topic exists once the pool went out once: the consumer
            # subscribes now and reads while the fault happens.
            wait_until(
                lambda: pub.accepted >= pool or pub.error is not None,
                timeout=120, message="every exchange topic was created",
            )  # fmt: skip
            with consumer_log.open("wb") as out:
                consumer = subprocess.Popen(
                    consume_command(sink, f"{ex.prefix}leader", "--batch-size", "200"),
                    env=ex.env(), stdout=subprocess.PIPE, stderr=out, text=True,
                )  # fmt: skip
            try:
                wait_until(
                    lambda: pub.accepted >= kill_at or pub.error is not None,
                    timeout=120, interval=0.005, message=f"{kill_at} records were accepted",
                )  # fmt: skip
                before = exchange_partitions(three_nodes, ex.prefix)
                victim_tp = min(before)
                victim = before[victim_tp].leader
                led = sum(p.leader == victim for p in before.values())
                accepted_at_kill, delivered_at_kill = pub.accepted, producer.summary.delivered
                killed = time.monotonic()
                assert kill_node(three_nodes.home, victim) is not None

                def moved() -> bool:
                    leader = exchange_partitions(three_nodes, ex.prefix)[victim_tp].leader
                    return leader not in (victim, -1)

                wait_until(moved, timeout=60, message=f"{victim_tp} has a new leader")
                failover_s = elapsed(killed)
                wait_until(
                    lambda: pub.accepted >= restart_at or pub.error is not None,
                    timeout=120, message=f"{restart_at} records were accepted",
                )  # fmt: skip
                # The two survivors take every record accepted so far (acks=all, 2 in sync).
                wait_until(
                    lambda: producer.summary.delivered >= restart_at or pub.error is not None,
                    timeout=120, message=f"{restart_at} records were delivered with a node down",
                )  # fmt: skip
                accepted_at_restart = pub.accepted
                delivered_at_restart = producer.summary.delivered
                down_s = elapsed(killed)
                restart_begun.set()
                restarting = time.monotonic()
                start_node(three_nodes.home, victim, timeout=START_TIMEOUT_S)
                restart_s = elapsed(restarting)
                topics = len({t for t, _ in before})
                wait_until(
                    lambda: _fully_replicated(three_nodes, ex.prefix, topics),
                    timeout=120, message=f"node {victim} rejoined every ISR",
                )  # fmt: skip
                rejoin_s = elapsed(restarting)
                pub.join(timeout=300)
                flushed_s = elapsed(killed)
                wait_until(
                    lambda: reader.count() >= LEADER_STREAM or consumer.poll() is not None,
                    timeout=180, message=f"the consumer stored {LEADER_STREAM} records",
                )  # fmt: skip
                stored_s = elapsed(killed)
                consumer.send_signal(signal.SIGTERM)
                stdout, _ = consumer.communicate(timeout=60)
            finally:
                consumer.kill()
                consumer.wait(timeout=30)
        records = list(reader.records())
    summary = producer.summary

    assert consumer.returncode == 0, _tail(consumer_log)
    # The kill fell mid-stream; the two survivors took what was accepted until the restart.
    assert 0 < accepted_at_kill < restart_at == accepted_at_restart < LEADER_STREAM
    assert delivered_at_kill < restart_at == delivered_at_restart
    assert (summary.accepted, summary.delivered, summary.failed) == (
        LEADER_STREAM, LEADER_STREAM, [],
    )  # fmt: skip
    check_sink(records, {r.meta.record_id for r in record_stream(LEADER_STREAM, seed=11)})
    delivered, duplicates, not_addressed, quarantined = _summary(stdout)
    assert (delivered, not_addressed, quarantined) == (LEADER_STREAM, 0, 0)
    assert list(read_quarantine(three_nodes.bootstrap, RECIPIENT, topic_prefix=ex.prefix)) == []
    _check_topic_profile(three_nodes, ex.prefix)
    trail = _check_audit(ex, published=summary.accepted, stored={r.message_id for r in records})
    _report(
        "leader_sigkill",
        {
            "records": LEADER_STREAM, "killed_node": victim, "partition": list(victim_tp),
            "partitions_it_led": led, "partitions": len(before),
            "accepted_at_kill": accepted_at_kill, "delivered_at_kill": delivered_at_kill,
            "delivered_while_down": delivered_at_restart - delivered_at_kill,
            "new_leader_after_s": failover_s, "node_down_s": down_s,
            "restart_s": restart_s, "isr_full_after_restart_s": rejoin_s,
            "kill_to_all_delivered_s": flushed_s, "kill_to_all_stored_s": stored_s,
            "consumer_duplicates": duplicates,
            "test_s": elapsed(began), **trail,
        },
    )  # fmt: skip


def test_audit_checkpoint_due_during_a_whole_cluster_outage_longer_than_30_s(
    three_nodes: Cluster,  # noqa: F811
    pki: Pki,  # noqa: F811
    wait_until: WaitUntil,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue #8: a producer's audit checkpoint signed while every node is dead is kept in
    the local log; its publication fails (no answer within 30 s) without failing or
    blocking the producer, is retried, and lands on the audit topic once the cluster is
    back."""
    ex = exchange_home(pki, tmp_path, three_nodes.bootstrap)
    stream = record_stream(CHECKPOINT_STREAM, seed=15)
    with ex.open_audit(SENDER) as audit, ex.producer(audit) as producer:
        for record in itertools.islice(stream, CHECKPOINT_STREAM // 2):
            producer.publish(record)
        producer.flush()  # the audit topic exists and holds a first checkpoint
        assert audit.wait_published(timeout=60)
        for record in stream:
            producer.publish(record)

        def all_logged() -> bool:
            producer.poll(0.05)  # serves delivery reports, appends their entries
            return audit.log.size == CHECKPOINT_STREAM

        wait_until(all_logged, timeout=60, message="every delivery was logged")
        assert audit.published < CHECKPOINT_STREAM
        for node in (1, 2, 3):
            assert kill_node(three_nodes.home, node) is not None
        killed = time.monotonic()
        producer.flush()  # checkpoints now, with nobody to publish to
        flush_s = elapsed(killed)
        assert flush_s < 5
        latest = audit.log.latest_checkpoint()
        assert latest is not None
        assert latest.checkpoint.size == CHECKPOINT_STREAM
        wait_until(
            lambda: "not yet published to the audit topic" in caplog.text,
            timeout=90, message="the checkpoint's publication failed",
        )  # fmt: skip
        failed_after_s = elapsed(killed)
        producer.poll(0.1)  # the producer still works
        assert audit.published < CHECKPOINT_STREAM
        restarting = time.monotonic()
        ensure_cluster(three_nodes.home, nodes=3, timeout=START_TIMEOUT_S)
        assert audit.wait_published(timeout=120)
        published_after_restart_s = elapsed(restarting)
        assert audit.published == CHECKPOINT_STREAM
    dump = read_topic(three_nodes.bootstrap, f"{ex.prefix}audit.{SENDER}")
    checkpoints = [m.value for m in dump.messages if m.kind == KIND_CHECKPOINT]
    assert SignedCheckpoint.parse(checkpoints[-1]).checkpoint.size == CHECKPOINT_STREAM
    entries = [m for m in dump.messages if m.kind == KIND_ENTRY]
    assert [int(m.key or b"-1") for m in entries] == list(range(CHECKPOINT_STREAM))  # once each
    assert "reachable again" in caplog.text
    _report(
        "audit_checkpoint_during_outage",
        {
            "entries": CHECKPOINT_STREAM, "flush_while_down_s": flush_s,
            "publication_failed_after_s": failed_after_s,
            "published_after_restart_s": published_after_restart_s,
        },
    )  # fmt: skip


def _consume_all(ex: Exchange, sink: Path, group: str, log: Path) -> str:
    """Run ``exchange consume --until-idle 3`` right after the cluster's restart and return
    its summary line; it must exit 0. Its idle clock starts only once it holds its
    partitions and read them to their end, so it cannot stop early with records waiting."""
    with log.open("wb") as out:
        consumer = subprocess.run(
            [*consume_command(sink, group), "--until-idle", "3"], env=ex.env(),
            stdout=subprocess.PIPE, stderr=out, text=True, timeout=300, check=False,
        )  # fmt: skip
    assert consumer.returncode == 0, _tail(log)
    return consumer.stdout


def _spooled_total(metrics: ExchangeMetrics) -> float:
    value = metrics.registry.get_sample_value(
        "exchange_outbox_spooled_envelopes_total", {"sender": SENDER}
    )
    return value or 0.0


@pytest.mark.parametrize("outage", ["retried", "outboxed"])
def test_whole_cluster_sigkilled_while_publishing_then_restarted(
    outage: str,
    *,
    three_nodes: Cluster,  # noqa: F811
    pki: Pki,  # noqa: F811
    wait_until: WaitUntil,
    tmp_path: Path,
) -> None:
    """``retried``: the outage is shorter than the producer's delivery timeout (120 s), so
    librdkafka retries and nothing is lost or duplicated. ``outboxed``: the delivery timeout
    is 5 s, the cluster stays down at least :data:`OUTBOX_OUTAGE_S`, and the producer's
    durable outbox spools what librdkafka gave up on and drains it once the cluster is back;
    a copy that reached the topic before its timeout may land twice, and the sink stores it
    once (the copies are counted as duplicates). The publisher polls through the outage
    (an audit checkpoint may fall due meanwhile: see the next test)."""
    began = time.monotonic()
    ex = exchange_home(pki, tmp_path, three_nodes.bootstrap)
    down_at, up_at = OUTAGE_STREAM * 4 // 10, OUTAGE_STREAM * 7 // 10
    down, restart_begun = threading.Event(), threading.Event()
    metrics = ExchangeMetrics()
    options: dict[str, Any] = (
        {
            "outbox": tmp_path / "outbox", "metrics": metrics,
            "config_overrides": {"delivery.timeout.ms": OUTBOX_DELIVERY_TIMEOUT_MS},
        }
        if outage == "outboxed"
        else {}
    )  # fmt: skip
    with ex.open_audit(SENDER) as audit, ex.producer(audit, **options) as producer:
        # Records [down_at, up_at) are accepted while no node runs; the rest while the
        # cluster starts again. With the outbox the publisher polls while it waits at a
        # gate, as a service does, so librdkafka's timeouts reach the outbox.
        pub = Publisher(
            producer, record_stream(OUTAGE_STREAM, seed=12),
            gates={down_at: down, up_at: restart_begun}, idle_poll=outage == "outboxed",
            # Known (outbox): an envelope in flight when every node dies can land and still
            # be spooled and sent again; the copy lands at a new offset and the consumer
            # quarantines it as `replay` (7 and 29 of 3,000 in two runs without this flush).
            # This variant measures the spool and drain of what was accepted during the
            # outage, so what was sent before it is settled first. (A checkpoint falling
            # due during an outage is the previous test's subject.)
            flush_at_first_gate=outage == "outboxed",
        )  # fmt: skip
        pub.start()
        wait_until(
            lambda: pub.waiting_at == down_at or pub.error is not None,
            timeout=120, message=f"{down_at} records were accepted",
        )  # fmt: skip
        delivered_at_kill = producer.summary.delivered
        killed = time.monotonic()
        for node in (1, 2, 3):
            assert kill_node(three_nodes.home, node) is not None
        down.set()
        wait_until(
            lambda: pub.accepted >= up_at or pub.error is not None,
            timeout=120, message=f"{up_at} records were accepted",
        )  # fmt: skip
        if outage == "outboxed":
            # librdkafka gave up on what it held (the delivery timeout passed), and the
            # producer kept it in its outbox...
            wait_until(
                lambda: _spooled_total(metrics) > 0 or pub.error is not None,
                timeout=60, message="the producer spooled envelopes to its outbox",
            )  # fmt: skip
            spooled_after_s = elapsed(killed)
            # ... and the outage lasts three delivery timeouts: its length is what this
            # variant sets, not a stand-in for a condition.
            wait_until(
                lambda: time.monotonic() - killed >= OUTBOX_OUTAGE_S,
                timeout=OUTBOX_OUTAGE_S + 5, message=f"{OUTBOX_OUTAGE_S} s of outage",
            )  # fmt: skip
        delivered_while_down = producer.summary.delivered
        restart_begun.set()
        restarting = time.monotonic()
        ensure_cluster(three_nodes.home, nodes=3, timeout=START_TIMEOUT_S)
        restart_s = elapsed(restarting)
        outage_s = elapsed(killed)
        pub.join(timeout=300)
        flushed_s = elapsed(killed)
    summary = producer.summary

    # Nothing can be delivered with every node dead: what was accepted meanwhile waited.
    assert delivered_while_down <= down_at
    assert (summary.accepted, summary.delivered, summary.failed) == (
        OUTAGE_STREAM, OUTAGE_STREAM, [],
    )  # fmt: skip
    if outage == "outboxed":
        assert outage_s >= OUTBOX_OUTAGE_S >= 3 * OUTBOX_DELIVERY_TIMEOUT_MS / 1000
        assert summary.spooled == 0
        assert summary.drained > 0
        assert _spooled_total(metrics) > 0
    sink = tmp_path / "atf.db"
    stdout = _consume_all(ex, sink, f"{ex.prefix}outage", tmp_path / "consume.log")
    with open_sink(f"sqlite:{sink}") as reader:
        records = list(reader.records())
    check_sink(records, {r.meta.record_id for r in record_stream(OUTAGE_STREAM, seed=12)})
    delivered, duplicates, not_addressed, quarantined = _summary(stdout)
    assert (delivered, not_addressed, quarantined) == (OUTAGE_STREAM, 0, 0)
    if outage == "retried":
        assert duplicates == 0  # the idempotent producer's retries never write twice
    assert list(read_quarantine(three_nodes.bootstrap, RECIPIENT, topic_prefix=ex.prefix)) == []
    _check_topic_profile(three_nodes, ex.prefix)
    trail = _check_audit(
        ex, published=summary.accepted, stored={r.message_id for r in records},
        copies=duplicates,
    )  # fmt: skip
    _report(
        f"cluster_sigkill_{outage}",
        {
            "records": OUTAGE_STREAM, "delivered_at_kill": delivered_at_kill,
            "accepted_while_down": up_at - down_at, "restart_s": restart_s,
            "outage_s": outage_s, "kill_to_all_delivered_s": flushed_s,
            "consumer_duplicates": duplicates, "test_s": elapsed(began),
            **(
                {
                    "spooled": int(_spooled_total(metrics)), "drained": summary.drained,
                    "spooled_after_s": spooled_after_s,
                }
                if outage == "outboxed"
                else {}
            ),
            **trail,
        },
    )  # fmt: skip


class _TransactionLog:
    """Follows a consumer's stderr for the sink's DEBUG lines, counting begins and commits."""

    BEGIN = "exchange.sinks._sqlite: sink transaction begin"
    COMMIT = "exchange.sinks._sqlite: sink transaction commit"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.begins = self.commits = 0
        self._read = 0
        self._partial = b""

    def poll(self) -> _TransactionLog:
        with self.path.open("rb") as f:
            f.seek(self._read)
            chunk = f.read()
        self._read += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for line in lines:
            text = line.decode(errors="replace")
            self.begins += self.BEGIN in text
            self.commits += self.COMMIT in text
        return self

    @property
    def open_transaction(self) -> bool:
        """A transaction began and has not (yet) committed."""
        return self.begins > self.commits


def _kill_consumer(
    command: list[str],
    env: dict[str, str],
    log: _TransactionLog,
    *,
    after_commits: int,
    aim: str,
    delay: float,
    wait_until: WaitUntil,
) -> dict[str, Any]:
    """Start a consumer and SIGKILL it once ``after_commits`` sink commits are logged: at once
    (``aim="after-commit"``: in the audit and receipt step that follows a commit), as soon as
    its log shows a transaction begun and not committed (``"inside"``), or ``delay`` seconds
    later (``"random-time"``: wherever the consumer is then). Returns where the kill
    landed, as the log left by the dead process says: ``inside`` means between the
    transaction's BEGIN and the line logged once its COMMIT returned.
    """
    with log.path.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=out)
    try:
        wait_until(
            lambda: log.poll().commits >= after_commits or proc.poll() is not None,
            timeout=120, interval=0.002, message=f"{after_commits} sink transactions committed",
        )  # fmt: skip
        if aim == "inside":
            wait_until(
                lambda: log.poll().open_transaction or proc.poll() is not None,
                timeout=60, interval=0.0005, message="a sink transaction began",
            )  # fmt: skip
        elif aim == "random-time":
            # The kill point itself is the random variable here, not a stand-in for a
            # condition: wait out the seeded delay (or an early exit, which fails below).
            due = time.monotonic() + delay
            wait_until(
                lambda: time.monotonic() >= due or proc.poll() is not None,
                timeout=delay + 5, interval=0.001, message=f"{delay:.3f} s passed",
            )  # fmt: skip
        assert proc.poll() is None, f"consumer exited early:\n{_tail(log.path)}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    log.poll()  # the process is gone: its log is final
    return {
        "aim": aim, "after_commits": after_commits, "commits": log.commits,
        **({"delay_s": round(delay, 3)} if aim == "random-time" else {}),
        "landed": "inside" if log.open_transaction else "outside",
    }  # fmt: skip


def test_consumer_sigkilled_at_random_points_including_inside_sink_transactions(
    three_nodes: Cluster,  # noqa: F811
    pki: Pki,  # noqa: F811
    wait_until: WaitUntil,
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    ex = exchange_home(pki, tmp_path, three_nodes.bootstrap)
    with ex.open_audit(SENDER) as audit, ex.producer(audit) as producer:
        for record in record_stream(CONSUMER_STREAM, seed=13):
            producer.publish(record)
    assert producer.summary.delivered == CONSUMER_STREAM

    rng = random.Random(CONSUMER_KILL_SEED)
    sink = tmp_path / "atf.db"
    group = f"{ex.prefix}crash"
    command = consume_command(sink, group, "--batch-size", str(CONSUMER_BATCH))
    kills: list[dict[str, Any]] = []
    logs = [tmp_path / f"consume-{run}.log" for run in range(CONSUMER_KILLS)]
    with open_sink(f"sqlite:{sink}") as reader:
        for run in range(CONSUMER_KILLS):
            # Where: after a random number of this process's commits, then aimed inside a
            # transaction, right after a commit, or at a random moment up to 0.8 s later
            # (polling, verifying, decrypting, auditing, or inside a transaction again).
            after_commits = rng.randint(1, 8)
            aim = rng.choices(("inside", "after-commit", "random-time"), (4, 3, 3))[0]
            delay = rng.uniform(0.0, 0.8)
            kills.append(
                _kill_consumer(
                    command, ex.env(), _TransactionLog(logs[run]),
                    after_commits=after_commits, aim=aim, delay=delay, wait_until=wait_until,
                )
                | {"run": run, "stored": reader.count()}
            )  # fmt: skip

        final = subprocess.run(
            [*command, "--until-idle", "3"],
            env=ex.env(), capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert final.returncode == 0, final.stderr[-3000:]
        records = list(reader.records())

    inside = sum(k["landed"] == "inside" for k in kills)
    assert len(kills) == CONSUMER_KILLS >= 8
    # The log proves it: a transaction began and its commit never returned.
    assert inside >= 1, kills
    assert all(0 < k["stored"] < CONSUMER_STREAM for k in kills), kills
    check_sink(records, {r.meta.record_id for r in record_stream(CONSUMER_STREAM, seed=13)})
    delivered, duplicates, not_addressed, quarantined = _summary(final.stdout)
    assert (not_addressed, quarantined) == (0, 0)
    assert delivered == CONSUMER_STREAM - kills[-1]["stored"]
    assert list(read_quarantine(three_nodes.bootstrap, RECIPIENT, topic_prefix=ex.prefix)) == []
    # What the start-up recoveries repaired, as each process logged it.
    recoveries = [
        tuple(int(n) for n in m.groups())
        for text in [*(p.read_text(errors="replace") for p in logs), final.stderr]
        for m in _RECOVERED.finditer(text)
    ]
    trail = _check_audit(ex, published=CONSUMER_STREAM, stored={r.message_id for r in records})
    _report(
        "consumer_sigkill",
        {
            "records": CONSUMER_STREAM, "batch": CONSUMER_BATCH, "seed": CONSUMER_KILL_SEED,
            "kills": len(kills), "inside_transaction": inside,
            "outside_transaction": len(kills) - inside, "final_run_duplicates": duplicates,
            "kill_points": kills, "test_s": elapsed(began),
            "recoveries": len(recoveries),
            "recovered_delivery_entries": sum(r[0] for r in recoveries),
            "receipts_resent": sum(r[1] for r in recoveries), **trail,
        },
    )  # fmt: skip


def test_consumer_until_idle_started_while_the_whole_cluster_is_down(
    three_nodes: Cluster,  # noqa: F811
    pki: Pki,  # noqa: F811
    wait_until: WaitUntil,
    tmp_path: Path,
) -> None:
    """``exchange consume --until-idle`` started while every node is dead: with a short
    ``--stall-timeout`` it exits 3 with one error line (not a clean idle exit with nothing
    stored); without, it waits for the cluster, and once the cluster is back it stores
    every waiting record and only then stops, exit 0."""
    began = time.monotonic()
    ex = exchange_home(pki, tmp_path, three_nodes.bootstrap)
    records = IDLE_STREAM
    with ex.open_audit(SENDER) as audit, ex.producer(audit) as producer:
        for record in record_stream(records, seed=14):
            producer.publish(record)
    assert producer.summary.delivered == records
    for node in (1, 2, 3):
        assert kill_node(three_nodes.home, node) is not None
    sink = tmp_path / "atf.db"
    command = [*consume_command(sink, f"{ex.prefix}idle"), "--until-idle", "2"]

    unreachable = subprocess.run(
        [*command, "--stall-timeout", "6"], env=ex.env(), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert unreachable.returncode == 3, unreachable.stderr[-3000:]
    errors = [line for line in unreachable.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: consume: no partitions assigned within 6 s (the cluster is unreachable, or "
        "the consumer group does not form); nothing was skipped"
    ], unreachable.stderr[-3000:]
    assert unreachable.stdout == ""  # no summary: not a clean idle exit

    log = tmp_path / "consume-waiting.log"
    with log.open("wb") as out:
        waiting = subprocess.Popen(
            command, env=ex.env(), stdout=subprocess.PIPE, stderr=out, text=True
        )
    try:
        wait_until(
            lambda: "consuming as" in log.read_text(errors="replace") or waiting.poll() is not None,
            timeout=60, message="the consumer started",
        )  # fmt: skip
        restarting = time.monotonic()
        ensure_cluster(three_nodes.home, nodes=3, timeout=START_TIMEOUT_S)
        restart_s = elapsed(restarting)
        # It did not exit while the cluster was down (its idle clock had not started)...
        assert waiting.poll() is None, _tail(log)
        stdout, _ = waiting.communicate(timeout=300)
        done_s = elapsed(restarting)
    finally:
        waiting.kill()
        waiting.wait(timeout=30)
    # ... and exited cleanly only once it held everything.
    assert waiting.returncode == 0, _tail(log)
    delivered, duplicates, not_addressed, quarantined = _summary(stdout)
    assert (delivered, duplicates, not_addressed, quarantined) == (records, 0, 0, 0)
    with open_sink(f"sqlite:{sink}") as reader:
        stored = list(reader.records())
    check_sink(stored, {r.meta.record_id for r in record_stream(records, seed=14)})
    trail = _check_audit(ex, published=records, stored={r.message_id for r in stored})
    _report(
        "consumer_until_idle_cluster_down",
        {
            "records": records, "restart_s": restart_s, "restart_to_idle_exit_s": done_s,
            "test_s": elapsed(began), **trail,
        },
    )  # fmt: skip
