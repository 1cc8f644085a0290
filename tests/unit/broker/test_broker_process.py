"""Recognising live, crashed and impostor node processes; stopping; reading logs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from exchange.broker import BrokerStartError, cluster_status
from exchange.broker.config import plan_nodes
from exchange.broker.layout import BrokerLayout
from exchange.broker.logs import follow
from exchange.broker.process import is_node_process, tail_lines, terminate
from exchange.broker.readiness import StartedNode, wait_until_serving
from exchange.broker.state import ClusterState, NodeState, save_state

#: Starts a process whose command line looks like the node with this server.properties.
FakeNode = Callable[[Path], "subprocess.Popen[bytes]"]

_SLEEPER = "import time; time.sleep(300)"


@pytest.fixture
def fake_node() -> Iterator[FakeNode]:
    """Start processes whose command line matches a broker node's; kill them afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def _start(server_properties: Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SLEEPER, "kafka.Kafka", str(server_properties)]
        )
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_process_running_this_nodes_config_is_alive(tmp_path: Path, fake_node: FakeNode) -> None:
    config = tmp_path / "node-1" / "server.properties"

    proc = fake_node(config)

    assert is_node_process(proc.pid, config)


def test_a_reused_pid_running_something_else_is_not_the_node(
    tmp_path: Path, fake_node: FakeNode
) -> None:
    other_node = fake_node(tmp_path / "node-2" / "server.properties")

    assert not is_node_process(other_node.pid, tmp_path / "node-1" / "server.properties")
    assert not is_node_process(os.getpid(), tmp_path / "node-1" / "server.properties")


def test_a_dead_or_missing_pid_is_not_alive(tmp_path: Path, dead_pid: int) -> None:
    config = tmp_path / "server.properties"

    assert not is_node_process(dead_pid, config)
    assert not is_node_process(None, config)


def test_status_tells_up_degraded_and_down(
    tmp_path: Path, fake_node: FakeNode, dead_pid: int
) -> None:
    layout = BrokerLayout(tmp_path / "home")
    specs = plan_nodes(3, 19092)
    live = [fake_node(layout.node(i).server_properties).pid for i in (1, 2, 3)]
    base = ClusterState(
        cluster_id="c1",
        base_port=19092,
        libs_dir=tmp_path / "libs",
        nodes=tuple(NodeState(spec=s, pid=pid) for s, pid in zip(specs, live, strict=True)),
    )

    save_state(layout.state_file, base)
    up = cluster_status(layout.home)
    save_state(layout.state_file, base.with_pid(2, dead_pid))
    crashed = cluster_status(layout.home)
    save_state(layout.state_file, base.with_pid(1, None).with_pid(2, dead_pid).with_pid(3, 1))
    down = cluster_status(layout.home)

    assert (up.state, up.up) == ("up", True)
    assert up.bootstrap == "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"
    assert (crashed.state, [n.alive for n in crashed.nodes]) == ("degraded", [True, False, True])
    assert (down.state, [n.alive for n in down.nodes]) == ("down", [False, False, False])
    assert crashed.to_json()["nodes"][1] == {
        "id": 2,
        "pid": dead_pid,
        "alive": False,
        "roles": ["broker", "controller"],
        "port": 19094,
        "controller_port": 19095,
        "log": str(layout.node(2).server_log),
    }


def test_status_without_a_cluster_is_down(tmp_path: Path) -> None:
    status = cluster_status(tmp_path)

    assert (status.state, status.bootstrap, status.nodes) == ("down", None, ())


def test_terminate_escalates_to_sigkill_when_sigterm_is_ignored() -> None:
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
            " print('ready', flush=True); time.sleep(300)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert stubborn.stdout is not None
        assert stubborn.stdout.readline() == b"ready\n"

        terminate([stubborn.pid], timeout=0.3)

        with pytest.raises(ProcessLookupError):
            os.kill(stubborn.pid, 0)
    finally:
        stubborn.kill()
        stubborn.wait()
        if stubborn.stdout is not None:
            stubborn.stdout.close()


def test_tail_lines_returns_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i}\n" for i in range(1000)), encoding="utf-8")

    assert tail_lines(log, 3) == ["line 997", "line 998", "line 999"]
    assert tail_lines(log, 0) == []
    assert tail_lines(tmp_path / "missing.log", 5) == []


def test_follow_yields_appended_lines_and_survives_rollover(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("old line\n", encoding="utf-8")
    done = threading.Event()
    lines = follow({1: log}, interval=0.01, stop=done.is_set)

    with log.open("a", encoding="utf-8") as out:
        out.write("new line\npartial")
    first = next(lines)
    with log.open("a", encoding="utf-8") as out:
        out.write(" finished\n")
    second = next(lines)
    log.write_text("after roll\n", encoding="utf-8")  # shorter: log4j2 rolled the file
    third = next(lines)
    done.set()

    assert [first, second, third] == [(1, "new line"), (1, "partial finished"), (1, "after roll")]


def test_readiness_fails_fast_with_the_log_tail_when_a_node_exits(
    tmp_path: Path, dead_pid: int
) -> None:
    server_log = tmp_path / "server.log"
    server_log.write_text(
        "INFO starting\nERROR Exiting Kafka due to fatal exception\n", encoding="utf-8"
    )
    node = StartedNode(
        node_id=1,
        pid=dead_pid,
        server_properties=tmp_path / "server.properties",
        server_log=server_log,
        stdout_log=tmp_path / "stdout.log",
        log_offset=0,
    )

    with pytest.raises(BrokerStartError) as caught:
        wait_until_serving("127.0.0.1:9", broker_ids=[1], started=[node], timeout=60)

    assert "node 1 exited during start-up" in str(caught.value)
    assert caught.value.log_path == server_log
    assert "fatal exception" in caught.value.diagnostics()


def test_readiness_times_out_when_nothing_serves_metadata() -> None:
    with pytest.raises(BrokerStartError, match=r"node\(s\) 1 did not serve metadata within 0.5 s"):
        wait_until_serving("127.0.0.1:9", broker_ids=[1], started=[], timeout=0.5)
