"""Resolving the Kafka broker runtime (jars) from Maven Central with ``mvn``.

The POM in ``deploy/kafka/pom.xml`` pins Apache Kafka and the log4j2 SLF4J binding.
``mvn dependency:copy-dependencies`` copies the runtime classpath into a directory named
after the POM's content hash, and a ``manifest.json`` written last records the jars. A later
call finds a complete directory for the same POM and skips Maven (and the need for ``mvn``)
entirely. Directories are never modified once complete, so a JVM running from one is never
disturbed by a resolution for a newer POM.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exchange.broker.tools import require_mvn
from exchange.errors import BrokerError

__all__ = ["MANIFEST_NAME", "find_mirror_pom", "find_pom", "resolve_runtime", "runtime_key"]

MANIFEST_NAME = "manifest.json"

# Part of the cache key: change it when the mvn invocation below changes what it produces.
_RESOLVER_VERSION = b"copy-dependencies/runtime/1"

_MVN_TIMEOUT_S = 900
_TAIL_LINES = 15

_PACKAGED_DIR = Path(__file__).resolve().parent / "_deploy"
_SOURCE_DIR = Path(__file__).resolve().parents[2] / "deploy" / "kafka"


def find_pom(name: str = "pom.xml") -> Path:
    """Locate a runtime POM in an installed wheel or a source checkout.

    Args:
        name: ``pom.xml`` (the broker) or ``mirror-pom.xml`` (MirrorMaker 2).

    Returns:
        The path of the POM.

    Raises:
        BrokerError: neither location holds it (a broken installation).
    """
    candidates = (_PACKAGED_DIR / name, _SOURCE_DIR / name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise BrokerError(
        f"the Kafka runtime POM is missing (looked for {candidates[0]} and {candidates[1]}); "
        "reinstall binational-exchange or run from a source checkout"
    )


def find_mirror_pom() -> Path:
    """Locate ``mirror-pom.xml``: MirrorMaker 2 resolves into its own jar directory, because
    connect-mirror 4.4.0 is not published and 4.3.1 needs its own 4.3.1 clients.

    Raises:
        BrokerError: it is missing.
    """
    return find_pom("mirror-pom.xml")


def runtime_key(pom: Path) -> str:
    """Return the cache key of ``pom``: a prefix of the SHA-256 of its bytes."""
    return _pom_digest(pom)[:16]


def resolve_runtime(cache_dir: Path, *, pom: Path | None = None) -> Path:
    """Return a directory holding the broker's runtime jars, running Maven only if needed.

    Args:
        cache_dir: Where resolved runtimes live (``$EXCHANGE_HOME/kafka/libs`` by default;
            test sessions share one across homes).
        pom: The POM to resolve; :func:`find_pom` when None.

    Returns:
        The directory of jars, to be put on the JVM classpath as ``<dir>/*``.

    Raises:
        ToolMissingError: resolution is needed and ``mvn`` is not on ``PATH``.
        BrokerError: Maven failed (the message carries its last output lines), or the
            cache directory cannot be written.
    """
    pom = (pom or find_pom()).resolve()
    digest = _pom_digest(pom)
    target = cache_dir / digest[:16]
    if _complete(target, digest):
        return target
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BrokerError(f"cannot create {cache_dir}: {exc.strerror}") from exc
    with _locked(cache_dir / ".lock"):
        # Another process may have resolved it while we waited for the lock.
        if _complete(target, digest):
            return target
        mvn = require_mvn()
        staging = cache_dir / f".staging-{digest[:16]}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        _run_mvn(mvn, pom, staging, log=cache_dir / f"mvn-{digest[:16]}.log")
        _write_manifest(staging, digest, pom)
        shutil.rmtree(target, ignore_errors=True)  # an incomplete leftover, never a used one
        staging.rename(target)
    return target


def _pom_digest(pom: Path) -> str:
    try:
        data = pom.read_bytes()
    except OSError as exc:
        raise BrokerError(f"cannot read the Kafka runtime POM {pom}: {exc.strerror}") from exc
    return hashlib.sha256(_RESOLVER_VERSION + b"\0" + data).hexdigest()


def _complete(target: Path, digest: str) -> bool:
    try:
        manifest: Any = json.loads((target / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or manifest.get("pom_sha256") != digest:
        return False
    jars = manifest.get("jars")
    if not isinstance(jars, list) or not jars:
        return False
    for jar in jars:
        path = target / str(jar.get("name", ""))
        if path.parent != target or not path.is_file() or path.stat().st_size != jar.get("size"):
            return False
    return True


def _run_mvn(mvn: str, pom: Path, out_dir: Path, *, log: Path) -> None:
    argv = [
        mvn,
        "-B",
        "-ntp",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={out_dir}",
        "-DincludeScope=runtime",
    ]
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_MVN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BrokerError(
            f"mvn did not finish resolving the Kafka runtime within {_MVN_TIMEOUT_S} s; "
            "check network access to Maven Central"
        ) from exc
    except OSError as exc:
        raise BrokerError(f"cannot run {mvn}: {exc.strerror}") from exc
    output = done.stdout + done.stderr
    log.write_text(output, encoding="utf-8")
    if done.returncode != 0:
        tail = [line for line in output.splitlines() if line.strip()][-_TAIL_LINES:]
        raise BrokerError(
            f"mvn failed (exit {done.returncode}) resolving the Kafka runtime from {pom}; "
            f"full output in {log}; last lines:\n" + "\n".join(f"    {t}" for t in tail)
        )
    if not any(out_dir.glob("*.jar")):
        raise BrokerError(f"mvn succeeded but copied no jars into {out_dir}; see {log}")


def _write_manifest(directory: Path, digest: str, pom: Path) -> None:
    jars = sorted(directory.glob("*.jar"))
    manifest = {
        "pom_sha256": digest,
        "pom": str(pom),
        "resolved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "jars": [{"name": j.name, "size": j.stat().st_size} for j in jars],
    }
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
