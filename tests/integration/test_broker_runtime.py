"""The local broker runtime against real Kafka JVMs: lifecycle, crash recovery, 3 nodes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource  # admin re-exports it untyped
from confluent_kafka.cimpl import NewTopic  # typed here; admin re-exports it untyped

from exchange.broker import (
    cluster_status,
    ensure_cluster,
    find_free_base_port,
    kill_node,
    start_node,
    stop_cluster,
)

WaitUntil = Callable[..., None]


def _exchange(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``exchange`` CLI in a subprocess with ``EXCHANGE_HOME=home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env["EXCHANGE_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "exchange", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _status(home: Path) -> tuple[int, dict[str, Any]]:
    done = _exchange(home, "broker", "status", "--json")
    doc: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, doc


@pytest.fixture
def home(tmp_path: Path, kafka_libs_cache: Path) -> Iterator[Path]:
    """A fresh EXCHANGE_HOME sharing the session's jar cache; its cluster is always stopped."""
    home = tmp_path / "home"
    (home / "kafka").mkdir(parents=True)
    kafka_libs_cache.mkdir(parents=True, exist_ok=True)
    (home / "kafka" / "libs").symlink_to(kafka_libs_cache, target_is_directory=True)
    yield home
    stop_cluster(home, timeout=10)


def _round_trip(bootstrap: str, topic: str, payloads: list[bytes]) -> list[bytes]:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "delivery.timeout.ms": 60000,
        }
    )
    failures: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            failures.append(err)

    for payload in payloads:
        # One key, so one partition: Kafka orders messages within a partition only.
        producer.produce(topic, payload, key=b"round-trip", on_delivery=delivered)
    assert producer.flush(60) == 0
    assert failures == []
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    received: list[bytes] = []
    try:
        consumer.subscribe([topic])
        for _ in range(120):
            if len(received) == len(payloads):
                break
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            value = msg.value()
            assert isinstance(value, bytes)
            received.append(value)
    finally:
        consumer.close()
    return received


def test_fixture_broker_round_trips_bytes(
    kafka_bootstrap: str, create_topic: Callable[..., str]
) -> None:
    topic = create_topic(partitions=1)
    payloads = [b"\x00seizure", b"trace-request", bytes(range(256))]

    assert _round_trip(kafka_bootstrap, topic, payloads) == payloads


def test_single_node_up_status_crash_restart_down(home: Path) -> None:
    base = find_free_base_port(1)

    first = _exchange(home, "broker", "up", "--port", str(base))
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == f"127.0.0.1:{base}"
    code, doc = _status(home)
    assert code == 0
    assert doc["state"] == "up"
    assert doc["bootstrap"] == f"127.0.0.1:{base}"
    [node] = doc["nodes"]
    assert node["alive"] is True
    assert node["roles"] == ["broker", "controller"]
    assert (node["port"], node["controller_port"]) == (base, base + 1)
    assert Path(node["log"]).is_file()
    first_pid = node["pid"]

    again = _exchange(home, "broker", "up")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == f"127.0.0.1:{base}"
    assert _status(home)[1]["nodes"][0]["pid"] == first_pid

    bigger = _exchange(home, "broker", "up", "--nodes", "3")
    assert bigger.returncode == 3
    assert len(bigger.stderr.strip().splitlines()) == 1
    assert "exchange broker down" in bigger.stderr

    assert kill_node(home, 1) == first_pid
    code, doc = _status(home)
    assert code == 1
    assert doc["state"] == "down"
    assert doc["nodes"][0]["alive"] is False

    restarted = _exchange(home, "broker", "up")
    assert restarted.returncode == 0, restarted.stderr
    code, doc = _status(home)
    assert code == 0
    assert doc["nodes"][0]["alive"] is True
    assert doc["nodes"][0]["pid"] != first_pid

    logs = _exchange(home, "broker", "logs", "--lines", "5000")
    assert logs.returncode == 0
    assert logs.stdout.count("Kafka Server started") == 2

    down = _exchange(home, "broker", "down")
    assert down.returncode == 0, down.stderr
    code, doc = _status(home)
    assert (code, doc["state"], doc["nodes"]) == (1, "down", [])
    assert not (home / "broker").exists()
    assert cluster_status(home).state == "down"


def test_three_nodes_replicate_and_survive_one_crash(home: Path, wait_until: WaitUntil) -> None:
    base = find_free_base_port(3)

    info = ensure_cluster(home, 3, base_port=base)

    assert info.started == (1, 2, 3)
    assert info.bootstrap == f"127.0.0.1:{base},127.0.0.1:{base + 2},127.0.0.1:{base + 4}"
    status = cluster_status(home)
    assert status.state == "up"
    assert [(n.node_id, n.alive, n.roles) for n in status.nodes] == [
        (i, True, ("broker", "controller")) for i in (1, 2, 3)
    ]
    assert len({n.port for n in status.nodes} | {n.controller_port for n in status.nodes}) == 6

    admin = AdminClient({"bootstrap.servers": info.bootstrap})
    broker_config = admin.describe_configs([ConfigResource(ConfigResource.Type.BROKER, "1")])
    [entries] = [f.result(timeout=30) for f in broker_config.values()]
    assert entries["min.insync.replicas"].value == "2"
    assert entries["default.replication.factor"].value == "3"
    assert entries["unclean.leader.election.enable"].value == "false"

    topic = "fault-rf3"
    admin.create_topics([NewTopic(topic, 3, 3)])[topic].result(timeout=60)

    def fully_replicated() -> bool:
        meta = admin.list_topics(topic=topic, timeout=5).topics[topic]
        return len(meta.partitions) == 3 and all(
            len(p.replicas) == 3 and len(p.isrs) == 3 for p in meta.partitions.values()
        )

    wait_until(fully_replicated, timeout=60, message=f"{topic} has 3 in-sync replicas")

    kill_node(home, 3)
    assert cluster_status(home).state == "degraded"
    assert [n.alive for n in cluster_status(home).nodes] == [True, True, False]
    # acks=all still succeeds: 2 in-sync replicas satisfy min.insync.replicas=2.
    assert _round_trip(info.bootstrap, topic, [b"one", b"two"]) == [b"one", b"two"]

    healed = start_node(home, 3)
    assert healed.started == (3,)
    assert cluster_status(home).state == "up"

    pids = [n.pid for n in cluster_status(home).nodes]
    assert stop_cluster(home) == 3
    assert cluster_status(home).state == "down"
    assert all(pid is not None and not _is_running(pid) for pid in pids)


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
