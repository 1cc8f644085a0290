"""The sink contract, written once and run against every backend.

A test module subclasses :class:`SinkContract` (and :class:`SinkCrashContract`) and provides a
``sink_url`` fixture naming a fresh, empty store: SQLite and JSON-lines in ``tests/unit``,
PostgreSQL in ``tests/integration``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from exchange.sinks import WINDOW_SIZE, DeliveredRecord, ReplayVerdict, WriteResult, open_sink
from tests.unit.sinks.crash_child import GROUP
from tests.unit.sinks.sink_data import TOPIC, make_record, make_stream, one_producer_by_partition

__all__ = ["CHILD_CMD", "GROUP", "SinkContract", "SinkCrashContract", "next_offsets", "run_child"]

#: Run the child as a module from the repository root, so its ``tests.`` imports resolve.
CHILD_CMD = [sys.executable, "-m", "tests.unit.sinks.crash_child"]
_REPO = Path(__file__).resolve().parents[3]
FRESH, DUPLICATE = ReplayVerdict.FRESH, ReplayVerdict.DUPLICATE
REPLAY, ROLLBACK = ReplayVerdict.REPLAY, ReplayVerdict.ROLLBACK


def next_offsets(items: Sequence[DeliveredRecord]) -> dict[tuple[str, int], int]:
    """The next offsets a consumer that stored ``items`` must resume from."""
    offsets: dict[tuple[str, int], int] = {}
    for item in items:
        key = (item.topic, item.partition)
        offsets[key] = max(offsets.get(key, 0), item.offset + 1)
    return offsets


def ids(items: Sequence[DeliveredRecord]) -> list[str]:
    return [item.message_id for item in items]


def run_child(url: str, count: int, batch: int, kill_at: int) -> subprocess.CompletedProcess[str]:
    """Run crash_child.py to completion (or to its own SIGKILL)."""
    return subprocess.run(
        [*CHILD_CMD, url, str(count), str(batch), str(kill_at)],
        cwd=_REPO,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=240,
        check=False,
    )


class SinkContract:
    """Behaviour every backend must show; subclasses provide the ``sink_url`` fixture."""

    #: whether two open sinks may write one store at once (JSON-lines: one writer only)
    concurrent_writers = True

    def test_written_records_read_back_in_order(self, sink_url: str) -> None:
        stream = make_stream(6)
        with open_sink(sink_url) as sink:
            result = sink.write("g", stream)
            assert (result.written, result.duplicates, result.rejected) == (6, 0, 0)
            assert sink.count() == 6
            assert list(sink.records()) == stream
            assert sink.get(stream[3].message_id) == stream[3]
            assert sink.get("no-such-id") is None

    def test_rewriting_a_batch_stores_nothing_twice(self, sink_url: str) -> None:
        stream = make_stream(8)
        with open_sink(sink_url) as sink:
            sink.write("g", stream)
            again = sink.write("g", stream)
            assert again.verdicts == (DUPLICATE,) * 8
            assert (again.written, again.duplicates) == (0, 8)
            assert sink.count() == 8

    def test_duplicate_inside_one_batch_is_stored_once(self, sink_url: str) -> None:
        a, b = make_record(0), make_record(1)
        with open_sink(sink_url) as sink:
            assert sink.write("g", [a, b, a]).verdicts == (FRESH, FRESH, DUPLICATE)
            assert ids(list(sink.records())) == ids([a, b])

    def test_offsets_are_stored_per_group_and_never_go_back(self, sink_url: str) -> None:
        stream = make_stream(10)
        with open_sink(sink_url) as sink:
            assert sink.stored_offsets("g") == {}
            sink.write("g", stream[:7])
            assert sink.stored_offsets("g") == next_offsets(stream[:7])
            sink.write("other", stream[:2])
            sink.write("g", stream[:3])  # a late redelivery must not move "g" back
            assert sink.stored_offsets("g") == next_offsets(stream[:7])
            assert sink.stored_offsets("other") == next_offsets(stream[:2])

    def test_skipped_offsets_advance_without_storing(self, sink_url: str) -> None:
        with open_sink(sink_url) as sink:
            result = sink.write(
                "g", [make_record(0)], skipped_offsets={(TOPIC, 0): 4, (TOPIC, 3): 0}
            )
            assert result.written == 1
            assert sink.stored_offsets("g") == {(TOPIC, 0): 5, (TOPIC, 3): 1}
            sink.write("g", [], skipped_offsets={(TOPIC, 0): 9})
            assert sink.stored_offsets("g") == {(TOPIC, 0): 10, (TOPIC, 3): 1}
            assert sink.count() == 1

    def test_replayed_sequence_is_replay(self, sink_url: str) -> None:
        original = make_record(5)
        replayed = make_record(5, message_id="new-id-same-sequence", offset=6)
        with open_sink(sink_url) as sink:
            sink.write("g", [original])
            assert sink.check(replayed) is REPLAY
            assert sink.write("g", [replayed]).verdicts == (REPLAY,)
            assert sink.get("new-id-same-sequence") is None
            # The replay was consumed: its offset advances so it is not read forever.
            assert sink.stored_offsets("g") == {(TOPIC, 0): 7}

    def test_older_epoch_is_rollback(self, sink_url: str) -> None:
        with open_sink(sink_url) as sink:
            sink.write("g", [make_record(0, epoch=2)])
            assert sink.check(make_record(100, epoch=1)) is ROLLBACK
            assert sink.write("g", [make_record(100, epoch=1)]).rejected == 1

    def test_newer_epoch_restarts_the_sequence(self, sink_url: str) -> None:
        with open_sink(sink_url) as sink:
            sink.write("g", [make_record(500, epoch=1)])
            assert sink.write("g", [make_record(0, epoch=2)]).verdicts == (FRESH,)
            assert sink.check(make_record(0, epoch=2, message_id="again")) is REPLAY
            assert sink.check(make_record(501, epoch=1)) is ROLLBACK

    def test_reordered_within_window_is_accepted_once(self, sink_url: str) -> None:
        with open_sink(sink_url) as sink:
            assert sink.write("g", [make_record(10), make_record(12)]).written == 2
            late = make_record(11)
            assert sink.check(late) is FRESH
            assert sink.write("g", [late, make_record(9)]).verdicts == (FRESH, FRESH)
            assert sink.check(make_record(11, message_id="replayed-11")) is REPLAY

    def test_sequence_below_the_window_is_rollback(self, sink_url: str) -> None:
        top = 2 * WINDOW_SIZE
        with open_sink(sink_url) as sink:
            sink.write("g", [make_record(0), make_record(top)])
            assert sink.check(make_record(5)) is ROLLBACK
            assert sink.check(make_record(top - WINDOW_SIZE)) is ROLLBACK
            assert sink.check(make_record(top - WINDOW_SIZE + 1)) is FRESH
            # A redelivery of a stored message is benign whatever its sequence.
            assert sink.check(make_record(0)) is DUPLICATE

    def test_one_producer_read_partition_by_partition_is_all_fresh(self, sink_url: str) -> None:
        # 3 * WINDOW_SIZE sequences round-robin over 3 partitions, each partition's backlog
        # read whole before the next: across partitions the sequence jumps back by about
        # 3 * WINDOW_SIZE, within one it only increases.
        partitions = one_producer_by_partition(3 * WINDOW_SIZE, partitions=3)
        with open_sink(sink_url) as sink:
            for backlog in partitions:
                for start in range(0, len(backlog), 500):
                    batch = backlog[start : start + 500]
                    assert sink.check_batch(batch) == (FRESH,) * len(batch)
                    assert sink.write("g", batch).verdicts == (FRESH,) * len(batch)
            assert sink.count() == 3 * WINDOW_SIZE
            assert sink.stored_offsets("g") == {(TOPIC, p): WINDOW_SIZE for p in range(3)}
            # The attacks keep their verdicts on each partition.
            first, last = partitions[1][0], partitions[1][-1]
            reused = make_record(last.sequence, message_id="reused", partition=1)
            assert sink.check(reused) is REPLAY
            old = make_record(first.sequence, message_id="old", partition=1)
            assert sink.check(old) is ROLLBACK

    def test_windows_are_per_topic_and_partition(self, sink_url: str) -> None:
        top = 3 * WINDOW_SIZE
        with open_sink(sink_url) as sink:
            sink.write("g", [make_record(0), make_record(top)])
            # Far below the window on the same partition: too old to tell, refused.
            assert sink.check(make_record(5)) is ROLLBACK
            # The producer's records on other partitions and topics have their own windows.
            assert sink.check(make_record(5, partition=1)) is FRESH
            assert sink.check(make_record(5, topic=f"{TOPIC}.other")) is FRESH
            assert sink.write("g", [make_record(5, partition=1)]).verdicts == (FRESH,)
            assert sink.check(make_record(5, partition=1, message_id="again")) is REPLAY
            assert sink.check(make_record(top, message_id="again")) is REPLAY

    def test_epoch_is_judged_per_partition(self, sink_url: str) -> None:
        with open_sink(sink_url) as sink:
            sink.write("g", [make_record(0, epoch=2, partition=0)])
            # Epoch 1's records still unread on another partition are not rolled back...
            assert sink.write("g", [make_record(7, epoch=1, partition=1)]).verdicts == (FRESH,)
            # ...but an older epoch on a partition that saw a newer one is.
            assert sink.check(make_record(8, epoch=1, partition=0)) is ROLLBACK
            assert sink.write("g", [make_record(1, epoch=2, partition=1)]).verdicts == (FRESH,)
            assert sink.check(make_record(8, epoch=1, partition=1)) is ROLLBACK

    def test_copy_of_an_envelope_in_another_partition_is_stored_once(self, sink_url: str) -> None:
        # The partition is not signed: an attacker can copy an envelope anywhere. Its message
        # id is, so the copy is DUPLICATE (the consumer quarantines it as a replay because
        # get() names other coordinates), and if the copy comes first the original is.
        original = make_record(42, partition=0, offset=3)
        copy = make_record(42, partition=2, offset=9)
        with open_sink(sink_url) as sink:
            assert sink.write("g", [original]).verdicts == (FRESH,)
            assert sink.check(copy) is DUPLICATE
            assert sink.write("g", [copy]).verdicts == (DUPLICATE,)
            assert sink.count() == 1
            stored = sink.get(copy.message_id)
            assert stored is not None
            assert (stored.partition, stored.offset) == (0, 3)
            assert sink.stored_offsets("g") == {(TOPIC, 0): 4, (TOPIC, 2): 10}

    def test_copy_arriving_before_its_original_is_stored_once(self, sink_url: str) -> None:
        original = make_record(42, partition=0, offset=3)
        copy = make_record(42, partition=2, offset=9)
        with open_sink(sink_url) as sink:
            assert sink.check_batch([copy, original]) == (FRESH, DUPLICATE)
            assert sink.write("g", [copy, original]).verdicts == (FRESH, DUPLICATE)
            assert sink.count() == 1
            stored = sink.get(original.message_id)
            assert stored is not None
            assert (stored.partition, stored.offset) == (2, 9)

    def test_producers_have_separate_windows(self, sink_url: str) -> None:
        with open_sink(sink_url) as sink:
            sink.write("g", [make_record(3)])
            other_producer = make_record(3, producer_id="fgr-producer-2")
            other_sender = make_record(3, sender="USA-ATF")
            assert sink.write("g", [other_producer, other_sender]).written == 2

    def test_check_is_read_only_and_sees_pending(self, sink_url: str) -> None:
        a = make_record(1)
        with open_sink(sink_url) as sink:
            assert sink.check(a) is FRESH
            assert sink.check(a) is FRESH
            assert sink.count() == 0
            assert sink.check(a, pending=[a]) is DUPLICATE
            assert sink.check(make_record(1, message_id="x"), pending=[a]) is REPLAY

    def test_check_batch_predicts_write(self, sink_url: str) -> None:
        with open_sink(sink_url) as sink:
            sink.write("g", [make_record(0), make_record(2000)])
            batch = [
                make_record(1999),  # reordered, in the window
                make_record(2000),  # stored already
                make_record(1999, message_id="x"),  # same sequence as the first item
                make_record(3),  # below the window
                make_record(2001),
                make_record(2001),  # second copy in the batch
            ]
            predicted = sink.check_batch(batch)
            assert predicted == (FRESH, DUPLICATE, REPLAY, ROLLBACK, FRESH, DUPLICATE)
            assert sink.count() == 2
            assert sink.check_batch([]) == ()
            assert sink.write("g", batch).verdicts == predicted

    def test_state_survives_close_and_reopen(self, sink_url: str) -> None:
        stream = make_stream(12)
        with open_sink(sink_url) as sink:
            sink.write("g", stream[:9])
        with open_sink(sink_url) as sink:
            assert sink.count() == 9
            assert sink.stored_offsets("g") == next_offsets(stream[:9])
            assert sink.check(stream[0]) is DUPLICATE
            assert sink.check(make_record(0, producer_id="producer-0", message_id="r")) is REPLAY
            assert sink.write("g", stream).written == 3
            assert list(sink.records()) == stream

    def test_batches_larger_than_a_page(self, sink_url: str) -> None:
        stream = make_stream(2600, producers=3, partitions=4)
        with open_sink(sink_url) as sink:
            assert sink.write("g", stream).written == 2600
            assert ids(list(sink.records())) == ids(stream)
            assert sink.write("g", stream).duplicates == 2600

    def test_closed_sink_refuses_use(self, sink_url: str) -> None:
        sink = open_sink(sink_url)
        sink.close()
        sink.close()
        with pytest.raises(RuntimeError, match="closed"):
            sink.write("g", [])

    def test_bad_arguments_are_programmer_errors(self, sink_url: str) -> None:
        with open_sink(sink_url) as sink:
            with pytest.raises(ValueError, match="group_id"):
                sink.write("", [make_record(0)])
            with pytest.raises(TypeError, match="DeliveredRecord"):
                sink.write("g", ["not a record"])  # type: ignore[list-item]  # the point of the test
            with pytest.raises(ValueError, match="skipped_offsets"):
                sink.write("g", [], skipped_offsets={(TOPIC, 0): -1})
            with pytest.raises(ValueError, match="skipped_offsets"):
                sink.write("g", [], skipped_offsets={TOPIC: 3})  # type: ignore[dict-item]  # the point
            assert sink.count() == 0

    def test_concurrent_writers_store_each_record_once(self, sink_url: str) -> None:
        if not self.concurrent_writers:
            with open_sink(sink_url), pytest.raises(Exception, match="in use"):
                open_sink(sink_url)
            return
        stream = make_stream(300)
        results: list[WriteResult] = []
        errors: list[BaseException] = []

        def consume() -> None:
            try:
                with open_sink(sink_url) as sink:
                    results.extend(sink.write("g", stream[i : i + 10]) for i in range(0, 300, 10))
            except BaseException as exc:  # noqa: BLE001  # reported by the main thread below
                errors.append(exc)

        threads = [threading.Thread(target=consume) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], [repr(e) for e in errors]
        assert sum(r.written for r in results) == 300
        assert sum(r.duplicates for r in results) == 300
        with open_sink(sink_url) as sink:
            assert sorted(ids(list(sink.records()))) == sorted(ids(stream))


class SinkCrashContract:
    """A process killed anywhere, even inside a transaction, loses and duplicates nothing."""

    def test_sigkill_inside_transaction_leaves_nothing_partial(self, sink_url: str) -> None:
        stream = make_stream(50)
        killed = run_child(sink_url, count=50, batch=10, kill_at=2)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert killed.stdout.splitlines() == ["committed 1", "committed 2"]
        with open_sink(sink_url) as sink:
            assert ids(list(sink.records())) == ids(stream[:20])
            assert sink.stored_offsets(GROUP) == next_offsets(stream[:20])
        resumed = run_child(sink_url, count=50, batch=10, kill_at=-1)
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout.splitlines()[-1] == "done"
        with open_sink(sink_url) as sink:
            assert ids(list(sink.records())) == ids(stream)
            # Redelivering everything from offset zero changes nothing.
            assert sink.write(GROUP, stream).duplicates == 50
            assert sink.count() == 50

    def test_sigkill_at_any_point_then_resume_stores_each_record_once(self, sink_url: str) -> None:
        count, batch = 2800, 7
        stream = make_stream(count)
        child = subprocess.Popen(
            [*CHILD_CMD, sink_url, str(count), str(batch), "-1"],
            cwd=_REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert child.stdout is not None
        # Wait for a condition (five commits), then kill the child wherever it is now.
        for line in child.stdout:
            if line == "committed 5\n":
                break
        child.kill()
        child.wait()
        child.stdout.close()
        assert child.stdin is not None
        child.stdin.close()
        assert child.returncode == -signal.SIGKILL
        with open_sink(sink_url) as sink:
            stored = ids(list(sink.records()))
            # Batches are atomic: a multiple of the batch size, and a prefix of the stream.
            assert len(stored) >= 5 * batch
            assert len(stored) % batch == 0
            assert stored == ids(stream[: len(stored)])
            assert sink.stored_offsets(GROUP) == next_offsets(stream[: len(stored)])
        resumed = run_child(sink_url, count=count, batch=batch, kill_at=-1)
        assert resumed.returncode == 0, resumed.stderr
        with open_sink(sink_url) as sink:
            assert ids(list(sink.records())) == ids(stream)
