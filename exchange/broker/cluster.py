"""Bringing a local KRaft cluster up, inspecting it, and taking it down.

These functions are what the ``exchange broker`` commands and the test fixtures call. Every
mutating call holds an exclusive lock on ``$EXCHANGE_HOME/.broker.lock``, so concurrent
``up``/``down`` from several processes serialize instead of racing.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from exchange.broker.config import bootstrap_of, plan_nodes
from exchange.broker.errors import ClusterMismatchError
from exchange.broker.launch import Progress, create_cluster, start_dead_nodes
from exchange.broker.layout import BrokerLayout
from exchange.broker.ports import DEFAULT_BASE_PORT, check_ports_free
from exchange.broker.process import find_node_processes, is_node_process, terminate, wait_gone
from exchange.broker.state import ClusterState, load_state
from exchange.broker.status import ClusterInfo, ClusterStatus, NodeStatus, observe_nodes
from exchange.errors import BrokerError

__all__ = [
    "DEFAULT_START_TIMEOUT",
    "DEFAULT_STOP_TIMEOUT",
    "ClusterInfo",
    "ClusterStatus",
    "NodeStatus",
    "Progress",
    "cluster_status",
    "ensure_cluster",
    "kill_node",
    "node_log",
    "start_node",
    "stop_cluster",
]

#: Seconds a start may take before it counts as failed (5-15 s is usual on 2 cores).
DEFAULT_START_TIMEOUT = 120.0
#: Seconds between SIGTERM and SIGKILL when stopping.
DEFAULT_STOP_TIMEOUT = 30.0


def ensure_cluster(
    home: Path,
    nodes: int = 1,
    *,
    base_port: int | None = None,
    libs_cache: Path | None = None,
    timeout: float = DEFAULT_START_TIMEOUT,
    extra_properties: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    client_config: Mapping[str, Any] | None = None,
) -> ClusterInfo:
    """Start a local cluster, or reuse the running one, and wait until it serves metadata.

    With no cluster under ``home``, this resolves the runtime, renders the configs, formats
    storage and starts ``nodes`` JVMs. With a cluster already there, it restarts the nodes
    that are not running (against their existing data) and reuses the rest.

    Args:
        home: The exchange home (``$EXCHANGE_HOME``).
        nodes: 1, or 3 for fault tests (replication 3, ``min.insync.replicas=2``).
        base_port: Node 1's PLAINTEXT port (default 19092); node n uses ``base + 2(n-1)``
            and the next port for its controller listener.
        libs_cache: Where resolved jars are cached (default ``home/kafka/libs``).
        timeout: Seconds to wait for the cluster to serve metadata.
        extra_properties: ``server.properties`` overrides applied to every node.
        progress: Called with a short phrase as each phase begins.
        client_config: librdkafka settings (TLS identity) of the readiness check, for
            clusters without a PLAINTEXT listener (the binational profile).

    Returns:
        The running cluster's bootstrap address, nodes and what this call started.

    Raises:
        ValueError: ``nodes`` is not 1 or 3, or ``base_port`` is out of range.
        ClusterMismatchError: a cluster with another node count, base port or properties
            already exists under ``home`` (run ``exchange broker down`` first).
        PortInUseError: a port a node needs is taken by another process.
        ToolMissingError: ``java`` 17+ (or ``mvn``, when jars must be resolved) is missing.
        BrokerStartError: a node exited or did not serve metadata in time.
        BrokerError: Maven failed, or files under ``home`` cannot be written.
    """
    began = time.monotonic()
    note = progress or _silent
    layout = BrokerLayout(home)
    wanted = plan_nodes(nodes, DEFAULT_BASE_PORT if base_port is None else base_port)
    extra = dict(extra_properties or {})
    with _locked(layout):
        state = load_state(layout.state_file)
        if state is None:
            state = create_cluster(layout, wanted, extra, libs_cache or layout.libs_cache, note)
        else:
            _check_same_shape(layout, state, nodes, base_port, extra)
        state, started = start_dead_nodes(layout, state, timeout, note, client_config=client_config)
    return ClusterInfo(
        bootstrap=bootstrap_of([n.spec for n in state.nodes]),
        cluster_id=state.cluster_id,
        home=layout.home,
        nodes=observe_nodes(layout, state),
        started=started,
        elapsed_s=time.monotonic() - began,
    )


def start_node(
    home: Path,
    node_id: int,
    *,
    timeout: float = DEFAULT_START_TIMEOUT,
    progress: Progress | None = None,
) -> ClusterInfo:
    """Start node ``node_id`` of the existing cluster if it is not running (fault tests).

    Other dead nodes stay down. Waits until the node serves and metadata lists every node
    that is alive.

    Raises:
        BrokerError: no cluster exists under ``home``.
        ValueError: the cluster has no node ``node_id``.
        PortInUseError, ToolMissingError, BrokerStartError: as for :func:`ensure_cluster`.
    """
    began = time.monotonic()
    layout = BrokerLayout(home)
    with _locked(layout):
        state = _require_state(layout)
        state.node(node_id)
        state, started = start_dead_nodes(
            layout, state, timeout, progress or _silent, only={node_id}
        )
    return ClusterInfo(
        bootstrap=bootstrap_of([n.spec for n in state.nodes]),
        cluster_id=state.cluster_id,
        home=layout.home,
        nodes=observe_nodes(layout, state),
        started=started,
        elapsed_s=time.monotonic() - began,
    )


def kill_node(
    home: Path,
    node_id: int,
    sig: signal.Signals = signal.SIGKILL,
    *,
    timeout: float = DEFAULT_STOP_TIMEOUT,
) -> int | None:
    """Send ``sig`` to node ``node_id`` and wait until it has exited (fault tests).

    Args:
        home: The exchange home.
        node_id: The node to kill.
        sig: SIGKILL (a crash) by default; SIGTERM for a clean stop.
        timeout: Seconds to wait for the process to exit.

    Returns:
        The pid signalled, or None when the node was not running.

    Raises:
        BrokerError: no cluster under ``home``, or the process outlived ``timeout``.
        ValueError: the cluster has no node ``node_id``.
    """
    layout = BrokerLayout(home)
    with _locked(layout):
        state = _require_state(layout)
        node = state.node(node_id)
        config = layout.node(node_id).server_properties
        if node.pid is None or not is_node_process(node.pid, config):
            return None
        try:
            os.kill(node.pid, sig)
        except ProcessLookupError:
            return node.pid
        if not wait_gone(node.pid, timeout=timeout):
            raise BrokerError(
                f"node {node_id} (pid {node.pid}) still runs {timeout:.0f} s after {sig.name}"
            )
        # The pid can look gone while the JVM's threads still hold its listeners; callers
        # (fault tests) expect to restart the node right away.
        check_ports_free((node.spec.port, node.spec.controller_port), grace=timeout)
        return node.pid


def stop_cluster(
    home: Path, *, keep_data: bool = False, timeout: float = DEFAULT_STOP_TIMEOUT
) -> int:
    """Stop every node (SIGTERM, then SIGKILL after ``timeout``) and, unless ``keep_data``,
    delete the cluster's state, data and logs. Resolved jars are kept.

    With ``keep_data`` the next :func:`ensure_cluster` restarts the same cluster with its
    topics; without it, the next one creates a new cluster of any shape.

    Returns:
        How many node processes were running and were stopped.

    Raises:
        BrokerError: the broker directory cannot be removed.
    """
    layout = BrokerLayout(home)
    with _locked(layout):
        try:
            state = load_state(layout.state_file)
        except BrokerError:
            state = None  # unreadable: the process scan below still finds the JVMs
        pids: set[int] = set()
        if state is not None:
            for node in state.nodes:
                config = layout.node(node.spec.node_id).server_properties
                if node.pid is not None and is_node_process(node.pid, config):
                    pids.add(node.pid)
        pids.update(find_node_processes(layout.broker_dir))
        terminate(pids, timeout=timeout)
        if not keep_data:
            try:
                shutil.rmtree(layout.broker_dir)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise BrokerError(f"cannot remove {layout.broker_dir}: {exc.strerror}") from exc
    return len(pids)


def cluster_status(home: Path) -> ClusterStatus:
    """Observe the cluster under ``home`` without changing anything.

    Returns:
        ``down`` with no nodes when there is no cluster; otherwise each node's pid, liveness
        (the pid still runs this node's broker), roles, ports and log path.

    Raises:
        BrokerError: the state file is unreadable.
    """
    layout = BrokerLayout(home)
    state = load_state(layout.state_file)
    if state is None:
        return ClusterStatus(state="down", bootstrap=None, cluster_id=None, nodes=())
    observed = observe_nodes(layout, state)
    alive = sum(node.alive for node in observed)
    summary: Literal["up", "down", "degraded"] = (
        "up" if alive == len(observed) else "down" if alive == 0 else "degraded"
    )
    return ClusterStatus(
        state=summary,
        bootstrap=bootstrap_of([n.spec for n in state.nodes]),
        cluster_id=state.cluster_id,
        nodes=observed,
    )


def node_log(home: Path, node_id: int) -> Path:
    """Return the path of node ``node_id``'s broker log (it may not exist yet)."""
    return BrokerLayout(home).node(node_id).server_log


# -- internals ---------------------------------------------------------------------------


def _silent(_: str) -> None:
    pass


@contextmanager
def _locked(layout: BrokerLayout) -> Iterator[None]:
    try:
        layout.home.mkdir(parents=True, exist_ok=True)
        handle = layout.lock_file.open("a")
    except OSError as exc:
        raise BrokerError(f"cannot write to {layout.home}: {exc.strerror}") from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _require_state(layout: BrokerLayout) -> ClusterState:
    state = load_state(layout.state_file)
    if state is None:
        raise BrokerError(f"no local cluster under {layout.home}; run `exchange broker up`")
    return state


def _check_same_shape(
    layout: BrokerLayout,
    state: ClusterState,
    nodes: int,
    base_port: int | None,
    extra: dict[str, str],
) -> None:
    have = len(state.nodes)
    remedy = f"run `exchange broker down` first to replace it (EXCHANGE_HOME={layout.home})"
    if have != nodes:
        raise ClusterMismatchError(f"a {have}-node cluster already exists; {remedy}")
    if base_port is not None and base_port != state.base_port:
        raise ClusterMismatchError(
            f"the existing cluster uses base port {state.base_port}, not {base_port}; {remedy}"
        )
    if extra != state.extra_properties:
        raise ClusterMismatchError(f"the existing cluster has other broker properties; {remedy}")
