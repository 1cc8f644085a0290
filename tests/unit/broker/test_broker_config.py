"""Rendering server.properties and log4j2.properties for one and three nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange.broker.config import (
    bootstrap_of,
    plan_nodes,
    render_log4j2_properties,
    render_server_properties,
)


def _props(text: str) -> dict[str, str]:
    lines = (line.partition("=") for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, _, value in lines}


def test_plan_assigns_two_consecutive_ports_per_node() -> None:
    nodes = plan_nodes(3, 19092)

    assert [(n.node_id, n.port, n.controller_port) for n in nodes] == [
        (1, 19092, 19093),
        (2, 19094, 19095),
        (3, 19096, 19097),
    ]
    assert bootstrap_of(nodes) == "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"


@pytest.mark.parametrize("nodes", [0, 2, 4])
def test_plan_rejects_unsupported_node_counts(nodes: int) -> None:
    with pytest.raises(ValueError, match=f"got nodes={nodes}, expected 1 or 3"):
        plan_nodes(nodes, 19092)


@pytest.mark.parametrize("base", [80, 65535])
def test_plan_rejects_ports_out_of_range(base: int) -> None:
    with pytest.raises(ValueError, match="base_port"):
        plan_nodes(1, base)


def test_single_node_is_combined_kraft_on_loopback_with_replication_one(tmp_path: Path) -> None:
    [node] = plan_nodes(1, 19092)

    props = _props(render_server_properties(node, [node], data_dir=tmp_path / "data"))

    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == props["listeners"]
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["group.initial.rebalance.delay.ms"] == "0"
    for key in (
        "default.replication.factor",
        "min.insync.replicas",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
    ):
        assert props[key] == "1", key
    assert "localhost" not in str(props)


def test_three_nodes_share_voters_and_require_two_in_sync_replicas(tmp_path: Path) -> None:
    nodes = plan_nodes(3, 19092)

    rendered = [
        _props(render_server_properties(n, nodes, data_dir=tmp_path / f"n{n.node_id}"))
        for n in nodes
    ]

    voters = "1@127.0.0.1:19093,2@127.0.0.1:19095,3@127.0.0.1:19097"
    assert {p["controller.quorum.voters"] for p in rendered} == {voters}
    assert [p["node.id"] for p in rendered] == ["1", "2", "3"]
    assert rendered[1]["listeners"] == "PLAINTEXT://127.0.0.1:19094,CONTROLLER://127.0.0.1:19095"
    for props in rendered:
        assert props["default.replication.factor"] == "3"
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
        assert props["transaction.state.log.min.isr"] == "2"
        assert props["unclean.leader.election.enable"] == "false"
        assert props["broker.heartbeat.interval.ms"] == "500"
        assert props["broker.session.timeout.ms"] == "3000"


def test_extra_properties_override_defaults(tmp_path: Path) -> None:
    [node] = plan_nodes(1, 19092)

    props = _props(
        render_server_properties(
            node, [node], data_dir=tmp_path, extra={"auto.create.topics.enable": "false"}
        )
    )

    assert props["auto.create.topics.enable"] == "false"


@pytest.mark.parametrize("bad", ["relative/data", "/srv/a,b", "/srv/a\nb"])
def test_unsafe_data_dirs_are_rejected(bad: str) -> None:
    [node] = plan_nodes(1, 19092)

    with pytest.raises(ValueError, match="path"):
        render_server_properties(node, [node], data_dir=Path(bad))


def test_property_injection_through_extra_is_rejected(tmp_path: Path) -> None:
    [node] = plan_nodes(1, 19092)

    with pytest.raises(ValueError, match="single line"):
        render_server_properties(
            node, [node], data_dir=tmp_path, extra={"x": "1\nsuper.users=User:ANONYMOUS"}
        )


def test_log4j2_writes_a_rolling_file_under_the_node(tmp_path: Path) -> None:
    log = tmp_path / "node-1" / "logs" / "server.log"

    text = render_log4j2_properties(log)

    assert f"appender.file.fileName = {log}" in text
    assert "appender.file.type = RollingFile" in text
    assert "rootLogger.appenderRef.file.ref = FILE" in text
    assert "Console" not in text
