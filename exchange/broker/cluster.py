"""Bringing a local KRaft cluster up, inspecting it, and taking it down.

These functions are what the ``exchange broker`` commands and the test fixtures call. Every
mutating call holds an exclusive lock on ``$EXCHANGE_HOME/.broker.lock``, so concurrent
``up``/``down`` from several processes serialize instead of racing.
"""

from __future__ import annotations

import base64
import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from exchange.broker.config import (
    NodeSpec,
    bootstrap_of,
    plan_nodes,
    render_log4j2_properties,
    render_server_properties,
)
from exchange.broker.errors import BrokerStartError, ClusterMismatchError
from exchange.broker.jars import MANIFEST_NAME, resolve_runtime
from exchange.broker.layout import BrokerLayout, NodeLayout
from exchange.broker.ports import DEFAULT_BASE_PORT, check_ports_free
from exchange.broker.process import (
    BROKER_JVM_FLAGS,
    BROKER_MAIN,
    STORAGE_TOOL_MAIN,
    TOOL_JVM_FLAGS,
    find_node_processes,
    is_node_process,
    java_argv,
    run_java_tool,
    spawn_detached,
    tail_lines,
    terminate,
    wait_gone,
)
from exchange.broker.readiness import StartedNode, log_size, wait_until_serving
from exchange.broker.state import ClusterState, NodeState, load_state, save_state
from exchange.broker.tools import require_java
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

_FORMAT_TIMEOUT_S = 120.0
# Seconds a restarted node's ports may take to be released by its killed predecessor.
_PORT_GRACE_S = 5.0

#: Receives one short phrase per phase ("resolving the Kafka runtime", ...), for spinners.
Progress = Callable[[str], None]


@dataclass(frozen=True)
class NodeStatus:
    """One node as observed now."""

    node_id: int
    pid: int | None
    alive: bool
    roles: tuple[str, ...]
    port: int
    controller_port: int
    log: Path

    def to_json(self) -> dict[str, Any]:
        """The node's entry in ``exchange broker status --json``."""
        return {
            "id": self.node_id,
            "pid": self.pid,
            "alive": self.alive,
            "roles": list(self.roles),
            "port": self.port,
            "controller_port": self.controller_port,
            "log": str(self.log),
        }


@dataclass(frozen=True)
class ClusterStatus:
    """The cluster as observed now: ``up`` (all nodes alive), ``degraded`` or ``down``."""

    state: Literal["up", "down", "degraded"]
    bootstrap: str | None
    cluster_id: str | None
    nodes: tuple[NodeStatus, ...]

    @property
    def up(self) -> bool:
        """Whether every node is alive."""
        return self.state == "up"

    def to_json(self) -> dict[str, Any]:
        """The document ``exchange broker status --json`` prints."""
        return {
            "state": self.state,
            "bootstrap": self.bootstrap,
            "cluster_id": self.cluster_id,
            "nodes": [node.to_json() for node in self.nodes],
        }


@dataclass(frozen=True)
class ClusterInfo:
    """A cluster that serves metadata, as :func:`ensure_cluster` leaves it."""

    bootstrap: str
    cluster_id: str
    home: Path
    nodes: tuple[NodeStatus, ...]
    #: Ids of the nodes this call started (empty: an already running cluster was reused).
    started: tuple[int, ...]
    #: Wall-clock seconds the call took.
    elapsed_s: float

    @property
    def reused(self) -> bool:
        """Whether the cluster was already fully running."""
        return not self.started


def ensure_cluster(
    home: Path,
    nodes: int = 1,
    *,
    base_port: int | None = None,
    libs_cache: Path | None = None,
    timeout: float = DEFAULT_START_TIMEOUT,
    extra_properties: Mapping[str, str] | None = None,
    progress: Progress | None = None,
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
            state = _create(layout, wanted, extra, libs_cache or layout.libs_cache, note)
        else:
            _check_same_shape(layout, state, nodes, base_port, extra)
        state, started = _start_dead_nodes(layout, state, timeout, note)
    return ClusterInfo(
        bootstrap=bootstrap_of([n.spec for n in state.nodes]),
        cluster_id=state.cluster_id,
        home=layout.home,
        nodes=_observe(layout, state),
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
        state, started = _start_dead_nodes(
            layout, state, timeout, progress or _silent, only={node_id}
        )
    return ClusterInfo(
        bootstrap=bootstrap_of([n.spec for n in state.nodes]),
        cluster_id=state.cluster_id,
        home=layout.home,
        nodes=_observe(layout, state),
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
    observed = _observe(layout, state)
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


def _new_cluster_id() -> str:
    # Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding; the storage
    # tool rejects ids starting with "-" (they look like options).
    while True:
        text = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        if not text.startswith("-"):
            return text


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


def _create(
    layout: BrokerLayout,
    specs: tuple[NodeSpec, ...],
    extra: dict[str, str],
    libs_cache: Path,
    note: Progress,
) -> ClusterState:
    orphans = find_node_processes(layout.broker_dir)
    if orphans:
        raise BrokerError(
            f"broker processes {sorted(orphans)} run from {layout.broker_dir} without a state "
            "file; run `exchange broker down` to stop them"
        )
    check_ports_free(p for spec in specs for p in (spec.port, spec.controller_port))
    java = require_java()
    note("resolving the Kafka runtime (Maven)")
    libs = resolve_runtime(libs_cache)
    # No state file means anything left in broker/ is debris of an interrupted `up`.
    shutil.rmtree(layout.broker_dir, ignore_errors=True)
    state = ClusterState(
        cluster_id=_new_cluster_id(),
        base_port=specs[0].port,
        libs_dir=libs,
        nodes=tuple(NodeState(spec=spec) for spec in specs),
        extra_properties=extra,
    )
    note("formatting storage")
    for spec in specs:
        _write_configs(layout.node(spec.node_id), spec, specs, extra)
    _format(java, state, [layout.node(spec.node_id) for spec in specs])
    save_state(layout.state_file, state)
    return state


def _write_configs(
    node: NodeLayout, spec: NodeSpec, specs: tuple[NodeSpec, ...], extra: dict[str, str]
) -> None:
    try:
        node.logs_dir.mkdir(parents=True, exist_ok=True)
        node.data_dir.mkdir(parents=True, exist_ok=True)
        node.server_properties.write_text(
            render_server_properties(spec, specs, data_dir=node.data_dir, extra=extra), "utf-8"
        )
        node.log4j2_properties.write_text(render_log4j2_properties(node.server_log), "utf-8")
    except OSError as exc:
        raise BrokerError(f"cannot write the config of {node.root}: {exc.strerror}") from exc


def _format(java: str, state: ClusterState, nodes: list[NodeLayout]) -> None:
    # One JVM per node, all at once: each takes ~1 s and they share nothing.
    running = [
        (
            node,
            run_java_tool(
                java_argv(
                    java,
                    flags=TOOL_JVM_FLAGS,
                    log4j2=node.log4j2_properties,
                    libs_dir=state.libs_dir,
                    main=STORAGE_TOOL_MAIN,
                    args=[
                        "format",
                        "--config",
                        str(node.server_properties),
                        "--cluster-id",
                        state.cluster_id,
                        "--ignore-formatted",
                    ],
                ),
                output=node.format_log,
            ),
        )
        for node in nodes
    ]
    failed: tuple[NodeLayout, str] | None = None
    for node, proc in running:
        try:
            code = proc.wait(timeout=_FORMAT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = None
        if code != 0 and failed is None:
            failed = (node, "timed out" if code is None else f"exit {code}")
    if failed is not None:
        node, why = failed
        raise BrokerStartError(
            f"formatting storage of {node.root.name} failed ({why})",
            log_path=node.format_log,
            log_tail=tail_lines(node.format_log, 20),
        )


def _start_dead_nodes(
    layout: BrokerLayout,
    state: ClusterState,
    timeout: float,
    note: Progress,
    only: set[int] | None = None,
) -> tuple[ClusterState, tuple[int, ...]]:
    dead = [
        node
        for node in state.nodes
        if (only is None or node.spec.node_id in only)
        and not is_node_process(node.pid, layout.node(node.spec.node_id).server_properties)
    ]
    started: list[StartedNode] = []
    if dead:
        check_ports_free(
            (p for n in dead for p in (n.spec.port, n.spec.controller_port)), grace=_PORT_GRACE_S
        )
        java = require_java()
        if not (state.libs_dir / MANIFEST_NAME).is_file():
            note("resolving the Kafka runtime (Maven)")
            state = replace(state, libs_dir=resolve_runtime(state.libs_dir.parent))
            save_state(layout.state_file, state)
        unformatted = [
            layout.node(n.spec.node_id)
            for n in dead
            if not (layout.node(n.spec.node_id).data_dir / "meta.properties").is_file()
        ]
        if unformatted:
            note("formatting storage")
            _format(java, state, unformatted)
        note(f"starting node(s) {', '.join(str(n.spec.node_id) for n in dead)}")
        try:
            for node in dead:
                launched = _spawn(java, state, layout.node(node.spec.node_id), node.spec.node_id)
                started.append(launched)
                state = state.with_pid(node.spec.node_id, launched.pid)
        finally:
            save_state(layout.state_file, state)
    alive_ids = [
        n.spec.node_id
        for n in state.nodes
        if is_node_process(n.pid, layout.node(n.spec.node_id).server_properties)
    ]
    note("waiting for the broker(s) to serve metadata")
    try:
        wait_until_serving(
            bootstrap_of([n.spec for n in state.nodes]),
            broker_ids=alive_ids,
            started=started,
            timeout=timeout,
        )
    except BrokerStartError:
        # Leave nothing half-started behind; state and logs stay for diagnosis.
        terminate([s.pid for s in started], timeout=10)
        raise
    return state, tuple(s.node_id for s in started)


def _spawn(java: str, state: ClusterState, node: NodeLayout, node_id: int) -> StartedNode:
    offset = log_size(node.server_log)
    argv = java_argv(
        java,
        flags=BROKER_JVM_FLAGS,
        log4j2=node.log4j2_properties,
        libs_dir=state.libs_dir,
        main=BROKER_MAIN,
        args=[str(node.server_properties)],
        error_file=node.logs_dir / "hs_err_pid%p.log",
    )
    pid = spawn_detached(argv, output=node.stdout_log)
    try:
        node.pid_file.write_text(f"{pid}\n", "utf-8")
    except OSError as exc:
        raise BrokerError(f"cannot write {node.pid_file}: {exc.strerror}") from exc
    return StartedNode(
        node_id=node_id,
        pid=pid,
        server_properties=node.server_properties,
        server_log=node.server_log,
        stdout_log=node.stdout_log,
        log_offset=offset,
    )


def _observe(layout: BrokerLayout, state: ClusterState) -> tuple[NodeStatus, ...]:
    return tuple(
        NodeStatus(
            node_id=node.spec.node_id,
            pid=node.pid,
            alive=is_node_process(node.pid, layout.node(node.spec.node_id).server_properties),
            roles=node.roles,
            port=node.spec.port,
            controller_port=node.spec.controller_port,
            log=layout.node(node.spec.node_id).server_log,
        )
        for node in state.nodes
    )
