"""MirrorMaker 2 processes of the binational profile: start, recognise, wait until started.

Each country runs the mirror that writes *into* its cluster (``--clusters <target>``), so two
JVMs run: MEX->USA in the USA's custody and USA->MEX in Mexico's. Like broker nodes they run
detached, and a pid counts only while its command line still names MirrorMaker and this
mirror's ``mm2.properties`` (pids are reused).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from exchange.broker.config import render_log4j2_properties
from exchange.broker.errors import BrokerStartError
from exchange.broker.process import java_argv, spawn_detached, tail_lines
from exchange.broker.readiness import log_size
from exchange.errors import BrokerError

__all__ = [
    "MIRROR_MAIN",
    "MirrorLayout",
    "find_mirror_processes",
    "is_mirror_process",
    "mirror_argv",
    "spawn_mirror",
    "wait_mirror_started",
]

MIRROR_MAIN = "org.apache.kafka.connect.mirror.MirrorMaker"
#: Logged by MirrorMaker once every herder (one per flow) has started.
MIRROR_READY = b"Kafka MirrorMaker started"
#: A mirror moves few, small records; it does not need a broker's heap.
MIRROR_JVM_FLAGS = ("-Xms128m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true")


@dataclass(frozen=True)
class MirrorLayout:
    """Run-time files of the mirror writing into ``target`` (config lives in deploy/)."""

    root: Path
    target: str
    properties: Path

    @property
    def log4j2_properties(self) -> Path:
        return self.root / "log4j2.properties"

    @property
    def log(self) -> Path:
        return self.root / "logs" / "mirror.log"

    @property
    def stdout_log(self) -> Path:
        return self.root / "logs" / "stdout.log"


def is_mirror_process(pid: int | None, properties: Path) -> bool:
    """Tell whether ``pid`` is a live MirrorMaker JVM started with ``properties``."""
    if pid is None:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return MIRROR_MAIN in cmdline and str(properties) in cmdline


def find_mirror_processes(config_dir: Path) -> list[int]:
    """Pids of MirrorMaker JVMs whose configuration lives under ``config_dir``."""
    prefix = str(config_dir) + "/"
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if MIRROR_MAIN in cmdline and any(arg.startswith(prefix) for arg in cmdline):
            found.append(int(proc.info["pid"]))
    return found


def spawn_mirror(java: str, libs_dir: Path, mirror: MirrorLayout) -> tuple[int, int]:
    """Start the mirror detached; return its pid and where its log stood before.

    Raises:
        BrokerError: files cannot be written or the JVM cannot be started.
    """
    try:
        mirror.log.parent.mkdir(parents=True, exist_ok=True)
        mirror.log4j2_properties.write_text(render_log4j2_properties(mirror.log), "utf-8")
    except OSError as exc:
        raise BrokerError(f"cannot write {mirror.root}: {exc.strerror}") from exc
    offset = log_size(mirror.log)
    return spawn_detached(mirror_argv(java, libs_dir, mirror), output=mirror.stdout_log), offset


def mirror_argv(java: str, libs_dir: Path, mirror: MirrorLayout) -> list[str]:
    """The mirror's command line: JVM flags, classpath, main class, config file, target.

    Key material and passwords are named inside ``mm2.properties`` (as paths), never here:
    a command line is readable by every local user (``ps``, ``/proc/<pid>/cmdline``).
    """
    return java_argv(
        java,
        flags=MIRROR_JVM_FLAGS,
        log4j2=mirror.log4j2_properties,
        libs_dir=libs_dir,
        main=MIRROR_MAIN,
        args=[str(mirror.properties), "--clusters", mirror.target],
        error_file=mirror.root / "logs" / "hs_err_pid%p.log",
    )


def wait_mirror_started(mirror: MirrorLayout, pid: int, offset: int, *, timeout: float) -> None:
    """Wait until the mirror logs that it started.

    Raises:
        BrokerStartError: it exited or did not start in time (with its log tail).
    """
    deadline = time.monotonic() + timeout
    while True:
        if not is_mirror_process(pid, mirror.properties):
            raise _error(mirror, f"mirror into {mirror.target} exited during start-up")
        if _logged(mirror.log, offset):
            return
        if time.monotonic() >= deadline:
            raise _error(mirror, f"mirror into {mirror.target} did not start within {timeout:g} s")
        time.sleep(0.25)


def _logged(log: Path, offset: int) -> bool:
    start = offset if log_size(log) >= offset else 0
    try:
        with log.open("rb") as handle:
            handle.seek(start)
            return MIRROR_READY in handle.read()
    except FileNotFoundError:
        return False


def _error(mirror: MirrorLayout, message: str) -> BrokerStartError:
    lines = tail_lines(mirror.log, 20) or tail_lines(mirror.stdout_log, 20)
    where = mirror.log if log_size(mirror.log) else mirror.stdout_log
    return BrokerStartError(message, log_path=where, log_tail=lines)
