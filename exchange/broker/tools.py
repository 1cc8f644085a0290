"""Finding the external tools the runtime needs: ``java`` (17+) and ``mvn``."""

from __future__ import annotations

import re
import shutil
import subprocess

from exchange.errors import ToolMissingError

__all__ = ["MIN_JAVA_MAJOR", "require_java", "require_mvn"]

#: Apache Kafka 4.x brokers need Java 17.
MIN_JAVA_MAJOR = 17

_VERSION = re.compile(r'version "(?P<version>[^"]+)"')


def require_java() -> str:
    """Return the path of a ``java`` of version 17 or newer found on ``PATH``.

    Raises:
        ToolMissingError: ``java`` is not on ``PATH``, does not run, or is older than 17.
    """
    java = shutil.which("java")
    if java is None:
        raise ToolMissingError(
            "java not found on PATH; the local Kafka broker needs Java 17 or newer "
            "(e.g. `apt-get install openjdk-17-jre-headless`)"
        )
    try:
        done = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolMissingError(f"{java} -version failed ({exc}); reinstall Java 17+") from exc
    match = _VERSION.search(done.stderr + done.stdout)
    if done.returncode != 0 or match is None:
        raise ToolMissingError(f"{java} -version did not report a version; reinstall Java 17+")
    major = _major(match["version"])
    if major < MIN_JAVA_MAJOR:
        raise ToolMissingError(
            f"got Java {match['version']} at {java}, expected Java {MIN_JAVA_MAJOR} or newer "
            "(Kafka 4.x needs it); put a newer java first on PATH"
        )
    return java


def require_mvn() -> str:
    """Return the path of ``mvn`` found on ``PATH``.

    Raises:
        ToolMissingError: ``mvn`` is not on ``PATH``.
    """
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ToolMissingError(
            "mvn not found on PATH; Maven resolves the Kafka broker from Maven Central "
            "(e.g. `apt-get install maven`)"
        )
    return mvn


def _major(version: str) -> int:
    # "1.8.0_392" is Java 8; "17.0.15" and "21" are what they say.
    parts = version.split(".")
    first = parts[0]
    if first == "1" and len(parts) > 1:
        first = parts[1]
    digits = re.match(r"\d+", first)
    return int(digits.group()) if digits else 0
