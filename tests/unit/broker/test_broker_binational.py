"""The binational profile without JVMs: status of nothing, command lines, CLI refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from exchange.broker.binational import binational_status, stop_binational
from exchange.broker.mirror import MIRROR_MAIN, MirrorLayout, is_mirror_process, mirror_argv
from exchange.deploy import DeployLayout, init_deployment
from exchange.routing import RoutingRule, RoutingTable

AGENCIES = ("MEX-FGR", "USA-ATF")
ROUTING = RoutingTable(rules=[RoutingRule(senders=["*"], recipients=list(AGENCIES))])


def test_status_of_a_home_without_the_profile_is_down_and_empty(tmp_path: Path) -> None:
    status = binational_status(tmp_path)
    assert not status.exists
    assert not status.up
    assert status.mirrors == ()
    assert status.to_json()["state"] == "down"
    assert stop_binational(tmp_path) == 0  # nothing to stop, nothing created
    assert not (tmp_path / "binational").exists()


def test_mirror_command_line_names_files_only_never_secrets(tmp_path: Path) -> None:
    init_deployment(tmp_path, agencies=AGENCIES, routing=ROUTING, record_types=("seizure",))
    here = DeployLayout(tmp_path).country("USA")
    mirror = MirrorLayout(tmp_path / "binational" / "mirror-USA", "USA", here.mirror_properties)
    argv = mirror_argv("/usr/bin/java", tmp_path / "libs", mirror)
    assert argv[-4:] == [MIRROR_MAIN, str(here.mirror_properties), "--clusters", "USA"]
    secrets = [p.read_text() for p in DeployLayout(tmp_path).root.rglob("scram.password")]
    assert secrets
    joined = " ".join(argv)
    assert not [s for s in secrets if s.strip() in joined]
    assert "PRIVATE KEY" not in joined
    assert not [a for a in argv if a.endswith((".key", "broker.pem", "local.pem", "remote.pem"))]


def test_a_pid_is_a_mirror_only_with_its_main_class_and_config(tmp_path: Path) -> None:
    assert not is_mirror_process(None, tmp_path / "mm2.properties")
    assert not is_mirror_process(os.getpid(), tmp_path / "mm2.properties")


def test_binational_profile_refuses_three_nodes_before_starting_anything(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
    env["EXCHANGE_HOME"] = str(tmp_path)
    argv = ["broker", "up", "--profile", "binational", "--nodes", "3"]
    done = subprocess.run(
        [sys.executable, "-m", "exchange", *argv],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "one node per country" in done.stderr
    assert not (tmp_path / "deploy").exists()
