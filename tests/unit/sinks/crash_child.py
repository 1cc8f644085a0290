"""Child process for the crash tests: a consumer loop that writes a stream into a sink.

    python -m tests.unit.sinks.crash_child URL COUNT BATCH KILL_AT   (from the repository root)

It resumes like a real consumer (from the sink's stored offsets), writes ``make_stream(COUNT)``
in batches of BATCH and prints ``committed N`` after each write. With KILL_AT >= 0 the
sink's before-commit hook SIGKILLs the process inside write number KILL_AT, after every
statement of the transaction ran and before it commits. With KILL_AT < 0 it prints ``done``
at the end and then waits for the parent to kill it.
"""

from __future__ import annotations

import os
import signal
import sys

from exchange.sinks import JsonlSink, Sink, SqliteSink
from exchange.sinks._base import BeforeCommitHook
from tests.unit.sinks.sink_data import make_stream

GROUP = "crash-test"


def open_with_hook(url: str, hook: BeforeCommitHook) -> Sink:
    """The sink ``url`` names, with ``hook`` run before each commit."""
    scheme, _, rest = url.partition(":")
    if scheme == "sqlite":
        return SqliteSink(rest, before_commit=hook)
    if scheme == "jsonl":
        return JsonlSink(rest, before_commit=hook)
    from exchange.sinks._postgres import PostgresSink  # noqa: PLC0415  # psycopg only when needed

    return PostgresSink(url, before_commit=hook)


def main(url: str, count: int, batch: int, kill_at: int) -> None:
    writes = 0

    def hook() -> None:
        if writes == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    sink = open_with_hook(url, hook)
    stored = sink.stored_offsets(GROUP)
    todo = [
        item
        for item in make_stream(count)
        if item.offset >= stored.get((item.topic, item.partition), 0)
    ]
    for start in range(0, len(todo), batch):
        sink.write(GROUP, todo[start : start + batch])
        writes += 1
        print(f"committed {writes}", flush=True)
    print("done", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
