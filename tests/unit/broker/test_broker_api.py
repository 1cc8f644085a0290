"""The public surface of exchange.broker and its refusals that need no JVM."""

from __future__ import annotations

from pathlib import Path

import pytest

import exchange.broker
from exchange.broker import (
    BrokerStartError,
    ClusterMismatchError,
    PortInUseError,
    ensure_cluster,
    kill_node,
    start_node,
)
from exchange.broker.config import plan_nodes
from exchange.broker.layout import BrokerLayout
from exchange.broker.state import ClusterState, NodeState, save_state
from exchange.errors import BrokerError, InfrastructureError


def test_public_surface_is_pinned() -> None:
    assert set(exchange.broker.__all__) == {
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
    }


def test_runtime_errors_are_infrastructure_errors() -> None:
    for error in (BrokerStartError, ClusterMismatchError, PortInUseError):
        assert issubclass(error, BrokerError)
        assert issubclass(error, InfrastructureError)
    assert not PortInUseError(19092).retriable
    assert not ClusterMismatchError("x").retriable


def test_start_error_diagnostics_show_the_log_path_and_tail(tmp_path: Path) -> None:
    error = BrokerStartError(
        "broker node 1 exited during start-up",
        log_path=tmp_path / "server.log",
        log_tail=["INFO a", "ERROR b"],
    )

    assert error.diagnostics() == (
        f"broker node 1 exited during start-up; see {tmp_path / 'server.log'}; "
        "last log lines:\n    INFO a\n    ERROR b"
    )


@pytest.fixture
def one_node_home(tmp_path: Path) -> Path:
    """A home whose state records a 1-node cluster that is not running."""
    layout = BrokerLayout(tmp_path / "home")
    save_state(
        layout.state_file,
        ClusterState(
            cluster_id="c1",
            base_port=19092,
            libs_dir=tmp_path / "libs",
            nodes=tuple(NodeState(spec=s) for s in plan_nodes(1, 19092)),
        ),
    )
    return layout.home


def test_up_with_another_node_count_says_to_run_down_first(one_node_home: Path) -> None:
    with pytest.raises(ClusterMismatchError, match="a 1-node cluster already exists") as caught:
        ensure_cluster(one_node_home, 3)

    assert "exchange broker down" in caught.value.diagnostics()


def test_up_with_another_base_port_is_refused(one_node_home: Path) -> None:
    with pytest.raises(ClusterMismatchError, match="base port 19092, not 29092"):
        ensure_cluster(one_node_home, 1, base_port=29092)


def test_fault_injection_needs_an_existing_node(one_node_home: Path, tmp_path: Path) -> None:
    assert kill_node(one_node_home, 1) is None  # recorded but not running
    with pytest.raises(ValueError, match="got node id 2, expected one of 1"):
        kill_node(one_node_home, 2)
    with pytest.raises(BrokerError, match="no local cluster"):
        start_node(tmp_path / "empty", 1)
