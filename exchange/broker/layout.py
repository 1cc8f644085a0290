"""Where the local broker runtime keeps its files under ``$EXCHANGE_HOME``.

::

    $EXCHANGE_HOME/
    ├── .broker.lock                 serializes up/down/start/kill across processes
    ├── kafka/libs/<pom-key>/        the resolved jars, one directory per POM content
    │   └── manifest.json            written last: proves the directory is complete
    └── broker/
        ├── state.json               cluster id, ports, pids, roles (see exchange.broker.state)
        └── node-<id>/
            ├── server.properties    rendered by exchange.broker.config
            ├── log4j2.properties
            ├── node.pid
            ├── data/                Kafka log.dirs (KRaft metadata and topic data)
            └── logs/server.log      the broker's log; logs/stdout.log gets the JVM's own output
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["BrokerLayout", "NodeLayout"]


@dataclass(frozen=True)
class NodeLayout:
    """Paths of one node's files."""

    root: Path

    @property
    def server_properties(self) -> Path:
        return self.root / "server.properties"

    @property
    def log4j2_properties(self) -> Path:
        return self.root / "log4j2.properties"

    @property
    def pid_file(self) -> Path:
        return self.root / "node.pid"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def server_log(self) -> Path:
        return self.logs_dir / "server.log"

    @property
    def stdout_log(self) -> Path:
        return self.logs_dir / "stdout.log"

    @property
    def format_log(self) -> Path:
        return self.logs_dir / "format.log"


@dataclass(frozen=True)
class BrokerLayout:
    """Paths of the broker runtime under one ``EXCHANGE_HOME``.

    Args:
        home: The exchange home directory; made absolute because broker configs embed it.
    """

    home: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", self.home.expanduser().resolve())

    @property
    def lock_file(self) -> Path:
        return self.home / ".broker.lock"

    @property
    def libs_cache(self) -> Path:
        return self.home / "kafka" / "libs"

    @property
    def broker_dir(self) -> Path:
        return self.home / "broker"

    @property
    def state_file(self) -> Path:
        return self.broker_dir / "state.json"

    def node(self, node_id: int) -> NodeLayout:
        """Return the layout of node ``node_id``."""
        return NodeLayout(self.broker_dir / f"node-{node_id}")
