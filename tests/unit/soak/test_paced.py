"""Hermetic tests of the open-loop schedule the soak (and the bench) publish on: due times
come from the schedule, not from when a record was sent, and a producer behind schedule
still serves its delivery reports."""

from __future__ import annotations

import time
from collections.abc import Iterator

from exchange.bench.workload import Publisher, paced
from exchange.records import ExchangeRecord


def _stream(count: int) -> Iterator[tuple[str, ExchangeRecord]]:
    # The loop only hands records to the publisher: any object stands in for a record.
    placeholder: ExchangeRecord = object()  # type: ignore[assignment]
    for i in range(count):
        yield f"r{i}", placeholder


class _Recorder:
    def __init__(self, publish_s: float = 0.0) -> None:
        self.published: list[tuple[str, int]] = []
        self.idles = 0
        self.publish_s = publish_s

    def publisher(self) -> Publisher:
        def publish(_record: ExchangeRecord, rid: str) -> None:
            self.published.append((rid, time.time_ns()))
            if self.publish_s:
                time.sleep(self.publish_s)

        def idle() -> None:
            self.idles += 1

        return Publisher(publish, idle, lambda: None, lambda: None, lambda: 0)


def test_due_times_follow_the_schedule_from_its_start() -> None:
    recorder = _Recorder()
    due: list[tuple[int, str, int]] = []
    start = time.time_ns() + 20_000_000  # 20 ms from now
    paced(1_000.0, _stream(30), recorder.publisher(), lambda i, r, d: due.append((i, r, d)),
          start_ns=start)  # fmt: skip
    assert [(i, r) for i, r, _ in due] == [(i, f"r{i}") for i in range(30)]
    assert [d for _, _, d in due] == [start + i * 1_000_000 for i in range(30)]
    # Never early: each record is published at or after its due time (the loop waits on the
    # monotonic clock; the wall clock may differ from it by a fraction of a millisecond).
    pairs = zip(recorder.published, due, strict=True)
    assert all(sent >= d - 1_000_000 for (_, sent), (_, _, d) in pairs)
    assert recorder.idles > 0  # waited for the schedule while serving reports


def test_a_producer_behind_schedule_still_serves_delivery_reports() -> None:
    recorder = _Recorder(publish_s=0.002)  # 2 ms per publish: far behind 10,000 msgs/s
    paced(10_000.0, _stream(40), recorder.publisher(), lambda *_: None)
    assert len(recorder.published) == 40
    # ~80 ms spent publishing: reports served about every 5 ms, not only at the end.
    assert recorder.idles >= 8
