"""Reading node logs: the last lines, and following them as they grow (``tail -f``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from exchange.broker.process import tail_lines

__all__ = ["follow", "tail_lines"]


def follow(
    paths: Mapping[int, Path],
    *,
    interval: float = 0.25,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[tuple[int, str]]:
    """Yield ``(node_id, line)`` for each line appended to the files in ``paths``.

    Starts at each file's current end. A file that shrinks (rolled over by log4j2) is read
    again from its start. Runs until ``stop()`` returns True or the caller stops iterating.

    Args:
        paths: Log file per node id.
        interval: Seconds between polls when nothing new arrived.
        stop: Checked between polls.
    """
    # Measured now, not at the first next(): lines written in between must not be lost.
    offsets = {node: _size(path) for node, path in paths.items()}
    return _follow(dict(paths), offsets, interval, stop)


def _follow(
    paths: dict[int, Path],
    offsets: dict[int, int],
    interval: float,
    stop: Callable[[], bool],
) -> Iterator[tuple[int, str]]:
    partial = dict.fromkeys(paths, b"")
    while not stop():
        grew = False
        for node, path in paths.items():
            size = _size(path)
            if size < offsets[node]:
                offsets[node], partial[node] = 0, b""
            if size == offsets[node]:
                continue
            with path.open("rb") as handle:
                handle.seek(offsets[node])
                chunk = handle.read(size - offsets[node])
            offsets[node] += len(chunk)
            grew = True
            *lines, partial[node] = (partial[node] + chunk).split(b"\n")
            for line in lines:
                yield node, line.decode("utf-8", errors="replace")
        if not grew:
            time.sleep(interval)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
