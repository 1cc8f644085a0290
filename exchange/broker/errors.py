"""Errors of the local broker runtime, refining :class:`exchange.errors.BrokerError`.

::

    BrokerError (InfrastructureError)
    ├── PortInUseError        a port the cluster needs is taken by another process
    ├── BrokerStartError      a node exited or did not serve metadata in time (has the log tail)
    └── ClusterMismatchError  a different cluster already lives under this EXCHANGE_HOME

``ToolMissingError`` (java or mvn missing) comes from :mod:`exchange.errors` unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from exchange.errors import BrokerError

__all__ = ["BrokerStartError", "ClusterMismatchError", "PortInUseError"]


class PortInUseError(BrokerError):
    """A port the local cluster needs is already bound by another process."""

    retriable = False

    def __init__(self, port: int) -> None:
        super().__init__(
            f"port {port} on 127.0.0.1 is already in use; stop whatever listens there "
            "or choose other ports with `exchange broker up --port BASE`"
        )
        self.port = port


class BrokerStartError(BrokerError):
    """A broker node exited during start-up or did not serve metadata before the deadline.

    Args:
        message: One sentence saying what happened.
        log_path: The node's log file, for the operator to read in full.
        log_tail: The last lines of that log, shown under the message.
    """

    def __init__(self, message: str, *, log_path: Path | None, log_tail: Sequence[str]) -> None:
        super().__init__(message)
        self.log_path = log_path
        self.log_tail = tuple(log_tail)

    def diagnostics(self) -> str:
        """The message, the log path and the indented last lines of the log."""
        head = str(self)
        if self.log_path is not None:
            head += f"; see {self.log_path}"
        if not self.log_tail:
            return head
        return head + "; last log lines:\n" + "\n".join(f"    {line}" for line in self.log_tail)


class ClusterMismatchError(BrokerError):
    """A cluster of another shape already exists under this ``EXCHANGE_HOME``."""

    retriable = False
