"""Fakes for the broker runtime's unit tests: tools on PATH and the fixtures' types."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

#: Starts a process whose command line looks like the node with this server.properties.
FakeNode = Callable[[Path], "subprocess.Popen[bytes]"]
#: Runs ``exchange broker ARGS`` with ``path=`` as PATH and ``home=`` as EXCHANGE_HOME.
RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


def install_script(directory: Path, name: str, body: str) -> Path:
    """Write an executable ``#!/bin/sh`` script ``name`` into ``directory``."""
    script = directory / name
    script.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    script.chmod(0o755)
    return script


def install_fake_java(directory: Path, version: str = "17.0.15") -> Path:
    """A ``java`` that only answers ``-version`` the way OpenJDK does (on stderr)."""
    return install_script(
        directory, "java", f"echo 'openjdk version \"{version}\" 2025-04-15' >&2\n"
    )
