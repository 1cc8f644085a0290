"""An append-only JSON-lines history of trust changes: ``init-country``, ``enroll``, ``rotate``,
``revoke``.

One JSON object per line, never secrets (ids, fingerprints, serials, validity, reasons). Each
line carries ``prev``, the SHA-256 of the previous line, so a deleted or edited line is
detectable with :func:`verify_history`. This is a local convenience for later audit; the
project's signed Merkle audit log is the tamper-evident record that others can check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from typing import Final

from exchange.crypto.pki.layout import PkiLayout, make_dirs

__all__ = ["EVENTS", "append_event", "read_history", "verify_history"]

EVENTS: Final = frozenset({"init-country", "enroll", "rotate", "revoke"})
_GENESIS: Final = "0" * 64

HistoryValue = str | int | list[str] | None


def _last_digest(data: bytes) -> str:
    lines = data.splitlines()
    return hashlib.sha256(lines[-1]).hexdigest() if lines else _GENESIS


def append_event(layout: PkiLayout, event: str, *, at: dt.datetime, **fields: HistoryValue) -> None:
    """Append one event line (file mode 0600, fsynced).

    Args:
        layout: where the history lives.
        event: one of :data:`EVENTS`.
        at: when the change took effect.
        **fields: event details; must never contain secrets.

    Raises:
        ValueError: unknown ``event``.
    """
    if event not in EVENTS:
        raise ValueError(f"got event {event!r}, expected one of {sorted(EVENTS)}")
    path = layout.history
    make_dirs(path.parent)
    # Callers hold the PKI lock, so reading the tail and appending cannot interleave.
    prev = _last_digest(path.read_bytes()) if path.exists() else _GENESIS
    record = {"at": at.isoformat(), "event": event, **fields, "prev": prev}
    line = json.dumps(record, sort_keys=True, separators=(",", ":")).encode("utf-8") + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_history(layout: PkiLayout) -> list[dict[str, HistoryValue]]:
    """Every event, oldest first (empty if there is no history yet)."""
    if not layout.history.exists():
        return []
    return [json.loads(line) for line in layout.history.read_bytes().splitlines() if line]


def verify_history(layout: PkiLayout) -> bool:
    """Whether every line's ``prev`` is the digest of the line before it."""
    if not layout.history.exists():
        return True
    prev = _GENESIS
    for line in layout.history.read_bytes().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            return False
        if not isinstance(record, dict) or record.get("prev") != prev:
            return False
        prev = hashlib.sha256(line).hexdigest()
    return True
