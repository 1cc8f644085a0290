"""The cluster's state file, ``$EXCHANGE_HOME/broker/state.json``.

It records what ``up`` created (cluster id, ports, roles, the jars it runs on) and the pid of
each node's JVM, so that ``status``, ``down`` and a later ``up`` in another process find the
same cluster. Writes are atomic (temporary file, then rename).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from exchange.broker.config import ROLES, NodeSpec
from exchange.errors import BrokerError

__all__ = ["STATE_FORMAT", "ClusterState", "NodeState", "load_state", "save_state"]

#: Bumped when the layout of state.json changes incompatibly.
STATE_FORMAT = 1


@dataclass(frozen=True)
class NodeState:
    """One node as recorded: its spec and the pid of its last started JVM (None: never)."""

    spec: NodeSpec
    pid: int | None = None
    roles: tuple[str, ...] = ROLES


@dataclass(frozen=True)
class ClusterState:
    """Everything ``up`` recorded about a cluster."""

    cluster_id: str
    base_port: int
    libs_dir: Path
    nodes: tuple[NodeState, ...]
    extra_properties: dict[str, str] = field(default_factory=dict)

    def node(self, node_id: int) -> NodeState:
        """Return node ``node_id``.

        Raises:
            ValueError: no such node in this cluster.
        """
        for node in self.nodes:
            if node.spec.node_id == node_id:
                return node
        ids = ", ".join(str(n.spec.node_id) for n in self.nodes)
        raise ValueError(f"got node id {node_id}, expected one of {ids}")

    def with_pid(self, node_id: int, pid: int | None) -> ClusterState:
        """Return a copy with node ``node_id``'s pid replaced."""
        self.node(node_id)
        nodes = tuple(replace(n, pid=pid) if n.spec.node_id == node_id else n for n in self.nodes)
        return replace(self, nodes=nodes)

    def to_json(self) -> dict[str, Any]:
        """Return the JSON document stored on disk."""
        return {
            "format": STATE_FORMAT,
            "cluster_id": self.cluster_id,
            "base_port": self.base_port,
            "libs_dir": str(self.libs_dir),
            "extra_properties": dict(self.extra_properties),
            "nodes": [
                {
                    "id": n.spec.node_id,
                    "port": n.spec.port,
                    "controller_port": n.spec.controller_port,
                    "roles": list(n.roles),
                    "pid": n.pid,
                }
                for n in self.nodes
            ],
        }

    @classmethod
    def from_json(cls, doc: Any) -> ClusterState:
        """Parse the document :meth:`to_json` wrote.

        Raises:
            ValueError: the document is not a state of a format this version understands.
        """
        if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
            got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise ValueError(f"got state format {got!r}, expected {STATE_FORMAT}")
        try:
            nodes = tuple(
                NodeState(
                    spec=NodeSpec(
                        node_id=int(n["id"]),
                        port=int(n["port"]),
                        controller_port=int(n["controller_port"]),
                    ),
                    pid=None if n["pid"] is None else int(n["pid"]),
                    roles=tuple(str(r) for r in n["roles"]),
                )
                for n in doc["nodes"]
            )
            extra = {str(k): str(v) for k, v in doc["extra_properties"].items()}
            return cls(
                cluster_id=str(doc["cluster_id"]),
                base_port=int(doc["base_port"]),
                libs_dir=Path(doc["libs_dir"]),
                nodes=nodes,
                extra_properties=extra,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"state document is missing or mistypes {exc}") from exc


def load_state(path: Path) -> ClusterState | None:
    """Read the state file; None when there is none.

    Raises:
        BrokerError: the file exists but cannot be read or parsed.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BrokerError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return ClusterState.from_json(json.loads(text))
    except ValueError as exc:
        raise BrokerError(
            f"{path} is not a valid broker state ({exc}); run `exchange broker down` to reset"
        ) from exc


def save_state(path: Path, state: ClusterState) -> None:
    """Write the state file atomically.

    Raises:
        BrokerError: the file cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".json", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(state.to_json(), out, indent=2)
            out.write("\n")
        Path(tmp).replace(path)
    except OSError as exc:
        raise BrokerError(f"cannot write {path}: {exc.strerror}") from exc
