"""The local Apache Kafka runtime: real KRaft brokers as plain JVM processes, no Docker.

This is tooling for developers, the demo and the tests (``exchange broker`` and the pytest
fixtures call it); library code never imports it. The broker is Apache Kafka 4.4.0 resolved
from Maven Central by ``deploy/kafka/pom.xml``; state, data and logs live under
``$EXCHANGE_HOME`` (see :mod:`exchange.broker.layout`). Submodules are implementation
details; the names exported here are the supported surface.

Example::

    from pathlib import Path
    from exchange.broker import ensure_cluster, stop_cluster

    info = ensure_cluster(Path(".exchange"), nodes=1)   # starts, or reuses a running one
    print(info.bootstrap)                               # 127.0.0.1:19092
    stop_cluster(Path(".exchange"))
"""

from __future__ import annotations

from exchange.broker.cluster import (
    DEFAULT_START_TIMEOUT,
    DEFAULT_STOP_TIMEOUT,
    ClusterInfo,
    ClusterStatus,
    NodeStatus,
    Progress,
    cluster_status,
    ensure_cluster,
    kill_node,
    node_log,
    start_node,
    stop_cluster,
)
from exchange.broker.errors import BrokerStartError, ClusterMismatchError, PortInUseError
from exchange.broker.jars import resolve_runtime
from exchange.broker.ports import DEFAULT_BASE_PORT, find_free_base_port, port_in_use

__all__ = [
    "DEFAULT_BASE_PORT",
    "DEFAULT_START_TIMEOUT",
    "DEFAULT_STOP_TIMEOUT",
    "BrokerStartError",
    "ClusterInfo",
    "ClusterMismatchError",
    "ClusterStatus",
    "NodeStatus",
    "PortInUseError",
    "Progress",
    "cluster_status",
    "ensure_cluster",
    "find_free_base_port",
    "kill_node",
    "node_log",
    "port_in_use",
    "resolve_runtime",
    "start_node",
    "stop_cluster",
]
