"""Fake external tools (``java``, ``mvn``) for the broker runtime's hermetic unit tests."""

from __future__ import annotations

from pathlib import Path


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
