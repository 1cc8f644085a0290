"""``exchange broker`` in a subprocess: one-line errors and exit codes, no JVM started."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from exchange.broker import find_free_base_port
from tests.unit.broker.broker_fakes import install_fake_java

EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INFRASTRUCTURE = 3


#: Runs ``exchange broker ARGS`` with ``path=`` as PATH and ``home=`` as EXCHANGE_HOME.
RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """An empty directory to use as the whole PATH."""
    path = tmp_path / "bin"
    path.mkdir()
    return path


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """Run ``python -m exchange broker ...`` with a chosen PATH and EXCHANGE_HOME."""

    def _run(*args: str, path: Path, home: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
        env["PATH"] = str(path)
        env["EXCHANGE_HOME"] = str(home or tmp_path / "home")
        return subprocess.run(
            [sys.executable, "-m", "exchange", "broker", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return _run


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_up_without_java_says_so_in_one_line(run_cli: RunCli, fake_bin: Path) -> None:
    done = run_cli("up", "--port", str(find_free_base_port(1)), path=fake_bin)

    assert done.returncode == EXIT_INFRASTRUCTURE
    assert "java not found on PATH" in _one_error_line(done.stderr)
    assert done.stdout == ""


def test_up_with_old_java_says_which_version_is_needed(run_cli: RunCli, fake_bin: Path) -> None:
    install_fake_java(fake_bin, version="1.8.0_392")

    done = run_cli("up", "--port", str(find_free_base_port(1)), path=fake_bin)

    assert done.returncode == EXIT_INFRASTRUCTURE
    assert "got Java 1.8.0_392" in _one_error_line(done.stderr)


def test_up_without_maven_says_so_in_one_line(run_cli: RunCli, fake_bin: Path) -> None:
    install_fake_java(fake_bin)

    done = run_cli("up", "--port", str(find_free_base_port(1)), path=fake_bin)

    assert done.returncode == EXIT_INFRASTRUCTURE
    assert "mvn not found on PATH" in _one_error_line(done.stderr)


def test_up_on_a_taken_port_names_the_port(run_cli: RunCli, fake_bin: Path) -> None:
    install_fake_java(fake_bin)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]

        done = run_cli("up", "--port", str(port), path=fake_bin)

    assert done.returncode == EXIT_INFRASTRUCTURE
    assert f"port {port} on 127.0.0.1 is already in use" in _one_error_line(done.stderr)


def test_up_accepts_only_one_or_three_nodes(run_cli: RunCli, fake_bin: Path) -> None:
    done = run_cli("up", "--nodes", "2", path=fake_bin)

    assert done.returncode == EXIT_USAGE
    assert "--nodes" in done.stderr


def test_status_of_no_cluster_exits_one(run_cli: RunCli, fake_bin: Path) -> None:
    human = run_cli("status", path=fake_bin)
    machine = run_cli("status", "--json", path=fake_bin)

    assert human.returncode == machine.returncode == EXIT_FINDINGS
    assert human.stdout.startswith("local Kafka cluster: down")
    assert json.loads(machine.stdout) == {
        "state": "down",
        "bootstrap": None,
        "cluster_id": None,
        "nodes": [],
    }


def test_down_without_a_cluster_is_harmless(run_cli: RunCli, fake_bin: Path) -> None:
    done = run_cli("down", path=fake_bin)

    assert done.returncode == 0
    assert "stopped 0 process(es)" in done.stderr


def test_logs_without_a_cluster_says_to_run_up(run_cli: RunCli, fake_bin: Path) -> None:
    done = run_cli("logs", path=fake_bin)

    assert done.returncode == EXIT_INFRASTRUCTURE
    assert "exchange broker up" in _one_error_line(done.stderr)
