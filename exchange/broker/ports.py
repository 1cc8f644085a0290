"""Port planning and port-in-use detection on the loopback interface."""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Iterable
from pathlib import Path

from exchange.broker.errors import PortInUseError

__all__ = [
    "DEFAULT_BASE_PORT",
    "LOOPBACK",
    "check_ports_free",
    "ephemeral_floor",
    "find_free_base_port",
    "port_in_use",
]

#: Node 1 listens on 19092 (PLAINTEXT) and 19093 (CONTROLLER); node n on BASE + 2(n-1) and
#: the port after it. Far from Kafka's 9092 so a real broker on the machine does not clash.
DEFAULT_BASE_PORT = 19092

#: Brokers bind and advertise 127.0.0.1, never localhost (which may resolve to ::1 first).
LOOPBACK = "127.0.0.1"


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """Tell whether ``port`` on ``host`` cannot be bound right now.

    Binding (not connecting) is the test: it also catches a socket that is bound but not
    listening yet, which is what a starting JVM holds.

    Args:
        port: TCP port, 1-65535.
        host: Interface address.

    Returns:
        True when another socket holds the port.
    """
    if not 0 < port < 65536:
        raise ValueError(f"got port {port}, expected 1-65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Without SO_REUSEADDR a port in TIME_WAIT from our own last run would look taken,
        # while the JVM (which sets it) could bind it fine.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def check_ports_free(ports: Iterable[int], host: str = LOOPBACK, *, grace: float = 0.0) -> None:
    """Raise for the first port in ``ports`` that is still taken after ``grace`` seconds.

    Args:
        ports: The ports to check.
        host: Interface address.
        grace: Seconds to keep polling a taken port. A JVM killed a moment ago can still
            hold its listeners while its threads unwind, even after it shows as a zombie.

    Raises:
        PortInUseError: naming the port.
    """
    deadline = time.monotonic() + grace
    for port in ports:
        while port_in_use(port, host):
            if time.monotonic() >= deadline:
                raise PortInUseError(port)
            time.sleep(0.1)


#: Where Linux says which local ports it hands to outgoing connections.
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: Linux's default first ephemeral port, when the range cannot be read.
_EPHEMERAL_FLOOR = 32768


def ephemeral_floor(source: Path = _EPHEMERAL_RANGE) -> int:
    """The lowest port the kernel may give an outgoing connection as its local port."""
    try:
        return int(source.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _EPHEMERAL_FLOOR


def find_free_base_port(nodes: int, *, start: int = 29092, stop: int | None = None) -> int:
    """Find a base port such that the ``2 * nodes`` ports from it are all free.

    For test sessions that must not collide with a developer's broker on the defaults.
    Another process may still take a port before the broker binds it; the start then fails
    with :class:`PortInUseError` or a clear log line.

    The search stays below the kernel's ephemeral range (:func:`ephemeral_floor`): a
    listening port inside it can be taken, while its node is down, as the local port of any
    outgoing connection (a client reconnecting to the other nodes), and the restarted node
    then cannot bind it. The three-node fault tests met exactly that.

    Args:
        nodes: Number of nodes (each needs two consecutive ports).
        start: First base port to try.
        stop: Give up at this port (default: the first ephemeral port).

    Returns:
        The base port.

    Raises:
        PortInUseError: no free range was found below ``stop``.
    """
    limit = ephemeral_floor() if stop is None else stop
    span = 2 * nodes
    for base in range(start, limit - span + 1, span + 8):
        if not any(port_in_use(port) for port in range(base, base + span)):
            return base
    raise PortInUseError(limit)
