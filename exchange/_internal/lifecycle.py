"""Explicit lifecycle state for clients (after httpx's ``ClientState``). Unstable API."""

from __future__ import annotations

from enum import Enum


class ClientState(Enum):
    OPEN = "open"
    CLOSED = "closed"


class Lifecycle:
    """Tracks whether a client may still be used; using a closed one is a programmer error."""

    def __init__(self, name: str) -> None:
        self._name = name
        self.state = ClientState.OPEN

    def check_open(self) -> None:
        if self.state is ClientState.CLOSED:
            raise RuntimeError(f"{self._name} is closed; create a new one")

    def close(self) -> bool:
        """Mark closed; return True the first time only, so cleanup runs once."""
        if self.state is ClientState.CLOSED:
            return False
        self.state = ClientState.CLOSED
        return True
