"""What the broker runtime reports: node and cluster status, and a started cluster."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from exchange.broker.layout import BrokerLayout
from exchange.broker.process import is_node_process
from exchange.broker.state import ClusterState

__all__ = ["ClusterInfo", "ClusterStatus", "NodeStatus", "observe_nodes"]


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


def observe_nodes(layout: BrokerLayout, state: ClusterState) -> tuple[NodeStatus, ...]:
    """Observe every recorded node now (liveness by pid and command line)."""
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
