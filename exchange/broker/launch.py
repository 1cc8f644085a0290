"""Creating a cluster's files and starting its nodes: format, spawn, wait until serving.

Callers (:mod:`exchange.broker.cluster`) hold the home's lock around these steps.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from exchange.broker.config import (
    NodeSpec,
    bootstrap_of,
    render_log4j2_properties,
    render_server_properties,
)
from exchange.broker.errors import BrokerStartError
from exchange.broker.jars import MANIFEST_NAME, resolve_runtime
from exchange.broker.layout import BrokerLayout, NodeLayout
from exchange.broker.ports import check_ports_free
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
)
from exchange.broker.readiness import StartedNode, log_size, wait_until_serving
from exchange.broker.state import ClusterState, NodeState, save_state
from exchange.broker.tools import require_java
from exchange.errors import BrokerError

__all__ = ["PORT_GRACE_S", "Progress", "create_cluster", "start_dead_nodes"]

#: Receives one short phrase per phase ("resolving the Kafka runtime", ...), for spinners.
Progress = Callable[[str], None]

_FORMAT_TIMEOUT_S = 120.0
#: Seconds a restarted node's ports may take to be released by its killed predecessor.
PORT_GRACE_S = 5.0


def _new_cluster_id() -> str:
    # Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding; the storage
    # tool rejects ids starting with "-" (they look like options).
    while True:
        text = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def create_cluster(
    layout: BrokerLayout,
    specs: tuple[NodeSpec, ...],
    extra: dict[str, str],
    libs_cache: Path,
    note: Progress,
) -> ClusterState:
    """Create a new cluster's files: check ports and java, resolve jars, render, format.

    Saves the state (no pids yet) and returns it; :func:`start_dead_nodes` starts the nodes.

    Raises:
        BrokerError: JVMs run from ``broker/`` without a state file, Maven failed, or files
            cannot be written.
        PortInUseError, ToolMissingError, BrokerStartError: as their names say.
    """
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


def start_dead_nodes(
    layout: BrokerLayout,
    state: ClusterState,
    timeout: float,
    note: Progress,
    only: set[int] | None = None,
    *,
    client_config: Mapping[str, Any] | None = None,
) -> tuple[ClusterState, tuple[int, ...]]:
    """Start the recorded nodes that are not running (all, or those in ``only``) and wait.

    Waits until each started node logged its start and metadata lists every live node. A
    cluster where nothing had to start gets the metadata check only.

    Returns:
        The state with the new pids (already saved) and the ids of the nodes started.

    Raises:
        PortInUseError, ToolMissingError, BrokerStartError: as their names say; after a
            failed wait the nodes started here are stopped again.
    """
    dead = [
        node
        for node in state.nodes
        if (only is None or node.spec.node_id in only)
        and not is_node_process(node.pid, layout.node(node.spec.node_id).server_properties)
    ]
    started: list[StartedNode] = []
    if dead:
        check_ports_free(
            (p for n in dead for p in (n.spec.port, n.spec.controller_port)), grace=PORT_GRACE_S
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
            client_config=client_config,
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
