"""Starting, recognising and stopping the broker's JVM processes.

Nodes run detached in their own session (``setsid``), with stdin from ``/dev/null`` and
stdout/stderr appended to a file, so they outlive the ``exchange`` command that started them
and never write to its terminal. A pid alone is not trusted: a node is alive only if the
process with that pid still runs ``kafka.Kafka`` with that node's ``server.properties``
(pids are reused).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import psutil

from exchange.errors import BrokerError

__all__ = [
    "BROKER_JVM_FLAGS",
    "BROKER_MAIN",
    "TOOL_JVM_FLAGS",
    "find_node_processes",
    "is_node_process",
    "java_argv",
    "run_java_tool",
    "spawn_detached",
    "tail_lines",
    "terminate",
    "wait_gone",
]

BROKER_MAIN = "kafka.Kafka"
STORAGE_TOOL_MAIN = "kafka.tools.StorageTool"

#: As Kafka's own scripts start a broker, with the heap pinned (always set -Xmx).
BROKER_JVM_FLAGS = (
    "-Xms512m",
    "-Xmx1g",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)

#: Short-lived tools start faster on a small heap, serial GC and the C1 compiler only.
TOOL_JVM_FLAGS = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")


def java_argv(
    java: str,
    *,
    flags: Sequence[str],
    log4j2: Path,
    libs_dir: Path,
    main: str,
    args: Sequence[str],
    error_file: Path | None = None,
) -> list[str]:
    """Build a java command line.

    The classpath is ``<libs>/*`` unexpanded: java expands the wildcard itself.
    """
    argv = [java, *flags, f"-Dlog4j2.configurationFile={log4j2}"]
    if error_file is not None:
        # A JVM crash report would otherwise land in whatever directory we ran from.
        argv.append(f"-XX:ErrorFile={error_file}")
    return [*argv, "-cp", f"{libs_dir}/*", main, *args]


def spawn_detached(argv: Sequence[str], *, output: Path) -> int:
    """Start ``argv`` in a new session, stdout and stderr appended to ``output``.

    ``posix_spawn`` rather than :class:`subprocess.Popen`: a ``Popen`` object dropped while
    its process runs warns at garbage collection, and these processes are meant to outlive us.

    Returns:
        The pid.

    Raises:
        BrokerError: the process cannot be started.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(output), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    try:
        return os.posix_spawn(
            argv[0], list(argv), dict(os.environ), file_actions=actions, setsid=True
        )
    except OSError as exc:
        raise BrokerError(f"cannot start {argv[0]}: {exc.strerror}") from exc


def run_java_tool(argv: Sequence[str], *, output: Path) -> subprocess.Popen[bytes]:
    """Start a short-lived java tool with its output in ``output``; the caller waits.

    Raises:
        BrokerError: the process cannot be started.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with output.open("ab") as sink:
            return subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
            )
    except OSError as exc:
        raise BrokerError(f"cannot start {argv[0]}: {exc.strerror}") from exc


def is_node_process(pid: int | None, server_properties: Path) -> bool:
    """Tell whether ``pid`` is a live broker JVM started with ``server_properties``.

    Args:
        pid: The recorded pid (None: never started).
        server_properties: The node's config file; its absolute path is on the command line.

    Returns:
        False for a missing pid, a dead or zombie process, or a process that is something
        else now (pid reuse).
    """
    if pid is None:
        return False
    _reap(pid)
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return BROKER_MAIN in cmdline and str(server_properties) in cmdline


def find_node_processes(broker_dir: Path) -> list[int]:
    """Return pids of broker JVMs whose config lives under ``broker_dir``.

    ``down`` uses this as a safety net for nodes whose pid never reached the state file
    (an interrupted ``up``) or when the state file is unreadable.
    """
    prefix = str(broker_dir) + os.sep
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if BROKER_MAIN in cmdline and any(arg.startswith(prefix) for arg in cmdline):
            found.append(int(proc.info["pid"]))
    return found


def terminate(pids: Iterable[int], *, timeout: float) -> None:
    """Send SIGTERM to ``pids``, then SIGKILL to those still running after ``timeout`` s.

    A broker whose controller quorum is gone can hang in controlled shutdown, hence the
    escalation. Returns once every process is gone.
    """
    pending = {pid for pid in pids if _signal(pid, signal.SIGTERM)}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = {pid for pid in pending if _running(pid)}
        if pending:
            time.sleep(0.1)
    for pid in pending:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pending and time.monotonic() < deadline:
        pending = {pid for pid in pending if _running(pid)}
        if pending:
            time.sleep(0.05)


def wait_gone(pid: int, *, timeout: float) -> bool:
    """Wait until ``pid`` has exited; return whether it did within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while _running(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def tail_lines(path: Path, lines: int) -> list[str]:
    """Return the last ``lines`` lines of ``path`` (empty when it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            # Broker log lines are short; 400 bytes a line is generous and bounds the read.
            handle.seek(max(0, size - 400 * max(lines, 1)))
            data = handle.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    return text[-lines:] if lines > 0 else []


def _signal(pid: int, sig: signal.Signals) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError as exc:
        raise BrokerError(f"not allowed to signal process {pid}: {exc.strerror}") from exc
    return True


def _running(pid: int) -> bool:
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        # Not our child: its parent reaps it, and a zombie has stopped running.
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
    # Our child runs until reaped. A JVM's main thread can show as a zombie while its other
    # threads (and its sockets) are still being torn down; waitpid waits for all of them.
    return reaped == 0


def _reap(pid: int) -> None:
    # When this process started the JVM (tests, a long-lived caller) it must collect the
    # exit status, or the dead JVM lingers as a zombie that still has its pid.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
