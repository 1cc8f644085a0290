"""The state file: round trip, atomic replacement and unreadable files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exchange.broker.config import plan_nodes
from exchange.broker.state import ClusterState, NodeState, load_state, save_state
from exchange.errors import BrokerError


def _state(tmp_path: Path) -> ClusterState:
    return ClusterState(
        cluster_id="lbXMXE-wWJXlmP8PUOCG8Q",
        base_port=19092,
        libs_dir=tmp_path / "libs" / "abc",
        nodes=tuple(NodeState(spec=s, pid=1000 + s.node_id) for s in plan_nodes(3, 19092)),
        extra_properties={"auto.create.topics.enable": "false"},
    )


def test_state_round_trips_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broker" / "state.json"
    state = _state(tmp_path)

    save_state(path, state)

    assert load_state(path) == state
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_with_pid_replaces_one_node(tmp_path: Path) -> None:
    state = _state(tmp_path).with_pid(2, None)

    assert [n.pid for n in state.nodes] == [1001, None, 1003]
    with pytest.raises(ValueError, match="got node id 7, expected one of 1, 2, 3"):
        state.with_pid(7, 1)


def test_json_names_every_node_with_pid_ports_and_roles(tmp_path: Path) -> None:
    doc = _state(tmp_path).to_json()

    assert doc["nodes"][0] == {
        "id": 1,
        "port": 19092,
        "controller_port": 19093,
        "roles": ["broker", "controller"],
        "pid": 1001,
    }


def test_missing_state_is_none(tmp_path: Path) -> None:
    assert load_state(tmp_path / "state.json") is None


@pytest.mark.parametrize(
    "content",
    ["{not json", json.dumps({"format": 99}), json.dumps({"format": 1, "nodes": []}), "[]"],
)
def test_unreadable_state_says_how_to_reset(tmp_path: Path, content: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(content, encoding="utf-8")

    with pytest.raises(BrokerError, match="exchange broker down"):
        load_state(path)
