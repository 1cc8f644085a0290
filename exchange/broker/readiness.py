"""Waiting until freshly started nodes really serve Kafka metadata.

A TCP connect is not enough: a broker accepts connections before it has joined the quorum
and been unfenced. A node counts as ready when its log (past the point where this start
began) says ``Kafka Server started`` -- which KRaft brokers print only once unfenced -- and
an AdminClient's metadata lists every expected broker. The wait polls and fails fast, with
the log tail, when a node's JVM exits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from exchange.broker.errors import BrokerStartError
from exchange.broker.process import is_node_process, tail_lines

__all__ = ["READY_MARKER", "StartedNode", "wait_until_serving"]

READY_MARKER = b"Kafka Server started"

_POLL_INTERVAL_S = 0.25
_TAIL = 20


@dataclass(frozen=True)
class StartedNode:
    """A node this call started, and where its log stood before the start."""

    node_id: int
    pid: int
    server_properties: Path
    server_log: Path
    stdout_log: Path
    log_offset: int


def log_size(path: Path) -> int:
    """Return the size of ``path`` in bytes (0 when missing), to mark where a start began."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def wait_until_serving(
    bootstrap: str,
    *,
    broker_ids: Collection[int],
    started: Sequence[StartedNode],
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    client_config: Mapping[str, Any] | None = None,
) -> None:
    """Block until every node in ``started`` logged its start and metadata lists ``broker_ids``.

    Args:
        bootstrap: The cluster's bootstrap servers.
        broker_ids: Broker ids that must appear in the metadata.
        started: Nodes started by this call (empty to only check metadata).
        timeout: Seconds before giving up.
        clock: Monotonic clock (injectable for tests).
        client_config: librdkafka security settings (TLS identity) of the checking client,
            for clusters whose listeners all require authentication.

    Raises:
        BrokerStartError: a started node's JVM exited, or the deadline passed; the error
            carries the path and last lines of the relevant node's log.
    """
    deadline = clock() + timeout
    waiting = {node.node_id: node for node in started}
    admin = AdminClient(
        {
            "bootstrap.servers": bootstrap,
            # Refused connections are expected while nodes start; keep librdkafka quiet.
            "log_level": 0,
            "socket.connection.setup.timeout.ms": 2000,
            **(client_config or {}),
        }
    )
    while True:
        for node in started:
            if not is_node_process(node.pid, node.server_properties):
                raise _start_error(node, f"broker node {node.node_id} exited during start-up")
        for node_id, node in list(waiting.items()):
            if _logged_start(node):
                del waiting[node_id]
        missing = set(broker_ids) - _listed_brokers(admin, min(2.0, max(0.1, deadline - clock())))
        if not waiting and not missing:
            return
        if clock() >= deadline:
            pending = sorted(set(waiting) | missing)
            culprit = next((n for n in started if n.node_id in pending), None)
            message = (
                f"broker node(s) {', '.join(map(str, pending))} did not serve metadata "
                f"within {timeout:g} s"
            )
            if culprit is None:
                raise BrokerStartError(message, log_path=None, log_tail=())
            raise _start_error(culprit, message)
        time.sleep(_POLL_INTERVAL_S)


def _listed_brokers(admin: AdminClient, timeout: float) -> set[int]:
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException:
        return set()
    return {int(broker_id) for broker_id in metadata.brokers}


def _logged_start(node: StartedNode) -> bool:
    offset = node.log_offset if log_size(node.server_log) >= node.log_offset else 0
    try:
        with node.server_log.open("rb") as handle:
            handle.seek(offset)
            return READY_MARKER in handle.read()
    except FileNotFoundError:
        return False


def _start_error(node: StartedNode, message: str) -> BrokerStartError:
    # JVM-level failures (bad flags, missing classes) reach only stdout.log; Kafka's own
    # errors reach server.log. Show whichever has something from this start.
    stdout_tail = tail_lines(node.stdout_log, _TAIL)
    if log_size(node.server_log) > node.log_offset or not stdout_tail:
        return BrokerStartError(
            message, log_path=node.server_log, log_tail=_tail_since(node, _TAIL)
        )
    return BrokerStartError(message, log_path=node.stdout_log, log_tail=stdout_tail)


def _tail_since(node: StartedNode, lines: int) -> list[str]:
    # Only what this start wrote: the previous run's shutdown lines would only mislead.
    offset = node.log_offset if log_size(node.server_log) >= node.log_offset else 0
    try:
        with node.server_log.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return text.splitlines()[-lines:]
