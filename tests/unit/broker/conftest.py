"""Hermetic helpers for the broker runtime's unit tests: fake tools on PATH, fake nodes.

Nothing here starts a JVM or touches the network; "processes" are short Python programs
whose command line looks like a broker's, which is all the runtime checks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker_fakes import FakeNode, RunCli

_SLEEPER = "import time; time.sleep(300)"


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    """An empty directory to use as the whole PATH."""
    path = tmp_path / "bin"
    path.mkdir()
    return path


@pytest.fixture
def fake_node() -> Iterator[FakeNode]:
    """Start processes whose command line matches a broker node's; kill them afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def _start(server_properties: Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SLEEPER, "kafka.Kafka", str(server_properties)]
        )
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


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
