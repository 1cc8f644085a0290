"""The anti-replay window on its own: the rules of docs/sinks.md, checked against a model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.errors import IntegrityReason
from exchange.sinks import WINDOW_SIZE, DeliveredRecord, ReplayVerdict
from exchange.sinks._replay import ProducerWindow, WindowKey, plan_batch
from tests.unit.sinks.sink_data import make_record, one_producer_by_partition

FRESH, REPLAY, ROLLBACK = ReplayVerdict.FRESH, ReplayVerdict.REPLAY, ReplayVerdict.ROLLBACK


def test_replayed_sequence_is_replay() -> None:
    window = ProducerWindow.first(0, 7)
    assert window.classify(0, 7) is REPLAY


def test_older_epoch_is_rollback_even_for_a_new_sequence() -> None:
    window = ProducerWindow.first(3, 0)
    assert window.classify(2, 10_000) is ROLLBACK


def test_window_edges() -> None:
    window = ProducerWindow.first(0, 5000)
    assert window.classify(0, 5000 - WINDOW_SIZE + 1) is FRESH  # oldest sequence still tracked
    assert window.classify(0, 5000 - WINDOW_SIZE) is ROLLBACK  # one below: cannot tell
    assert window.classify(0, 5001) is FRESH


def test_a_jump_beyond_the_window_forgets_everything_older() -> None:
    window = ProducerWindow.first(0, 0).accept(0, 1).accept(0, 1 + WINDOW_SIZE)
    assert window.bitmap == 1
    assert window.classify(0, 1) is ROLLBACK


def test_a_huge_sequence_jump_costs_nothing() -> None:
    # A hostile producer's 2**62 must not become a 2**62-bit shift.
    window = ProducerWindow.first(0, 5).accept(0, 2**62)
    assert (window.highest, window.bitmap) == (2**62, 1)
    assert window.classify(0, 5) is ROLLBACK


def test_accepting_a_non_fresh_pair_is_a_bug() -> None:
    with pytest.raises(ValueError, match="not fresh"):
        ProducerWindow.first(0, 3).accept(0, 3)


def test_stored_form_round_trips_and_has_a_fixed_size() -> None:
    window = ProducerWindow.first(1, 10).accept(1, 12).accept(1, 11 + WINDOW_SIZE)
    stored = window.bitmap_bytes()
    assert len(stored) == WINDOW_SIZE // 8
    assert ProducerWindow.from_stored(1, window.highest, stored) == window
    with pytest.raises(ValueError, match="bitmap"):
        ProducerWindow.from_stored(1, 0, b"\x01")


def test_verdicts_carry_the_quarantine_reason() -> None:
    assert ReplayVerdict.REPLAY.integrity_reason is IntegrityReason.REPLAY
    assert ReplayVerdict.ROLLBACK.integrity_reason is IntegrityReason.ROLLBACK
    assert ReplayVerdict.FRESH.integrity_reason is None
    assert ReplayVerdict.DUPLICATE.integrity_reason is None


class _Model:
    """The rules as plain sets: the reference the bitmap implementation must match."""

    def __init__(self) -> None:
        self.epoch = -1
        self.seen: set[int] = set()

    def classify(self, epoch: int, sequence: int) -> ReplayVerdict:
        if epoch < self.epoch:
            return ROLLBACK
        if epoch > self.epoch:
            return FRESH
        highest = max(self.seen)
        if sequence > highest:
            return FRESH
        if highest - sequence >= WINDOW_SIZE:
            return ROLLBACK
        return REPLAY if sequence in self.seen else FRESH

    def accept(self, epoch: int, sequence: int) -> None:
        if epoch > self.epoch:
            self.epoch, self.seen = epoch, set()
        self.seen.add(sequence)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 3 * WINDOW_SIZE)),
        min_size=1,
        max_size=200,
    )
)
def test_window_matches_the_set_model(deliveries: list[tuple[int, int]]) -> None:
    model = _Model()
    window: ProducerWindow | None = None
    for epoch, sequence in deliveries:
        expected = model.classify(epoch, sequence)
        got = FRESH if window is None else window.classify(epoch, sequence)
        assert got is expected, (epoch, sequence)
        if got is FRESH:
            model.accept(epoch, sequence)
            window = (
                ProducerWindow.first(epoch, sequence)
                if window is None
                else window.accept(epoch, sequence)
            )


def test_the_window_key_is_producer_topic_and_partition() -> None:
    record = make_record(3, sender="USA-ATF", producer_id="atf-1", topic="t", partition=5)
    assert record.window_key == ("USA-ATF", "atf-1", "t", 5)
    assert record.producer_key == ("USA-ATF", "atf-1")


#: One producer's 3 * WINDOW_SIZE sequences, round-robin over 3 partitions.
_BY_PARTITION = one_producer_by_partition(3 * WINDOW_SIZE, partitions=3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(1, 700)), max_size=40))
def test_any_interleaving_of_whole_partitions_is_all_fresh(reads: list[tuple[int, int]]) -> None:
    """Kafka keeps each partition in order but may interleave partitions any way it likes:
    however the consumer's fetches take turns, a legitimate stream is accepted entirely."""
    cursors = [0, 0, 0]
    order: list[DeliveredRecord] = []
    for partition, count in [
        *reads,
        (0, 3 * WINDOW_SIZE),
        (1, 3 * WINDOW_SIZE),
        (2, 3 * WINDOW_SIZE),
    ]:
        backlog = _BY_PARTITION[partition]
        order += backlog[cursors[partition] : cursors[partition] + count]
        cursors[partition] = min(len(backlog), cursors[partition] + count)
    assert len(order) == 3 * WINDOW_SIZE
    windows: dict[WindowKey, ProducerWindow] = {}
    for start in range(0, len(order), 256):  # in poll-sized batches, state carried over
        plan = plan_batch(order[start : start + 256], stored_ids=(), windows=windows)
        assert set(plan.verdicts) == {FRESH}
        windows.update(plan.windows)
    assert len(windows) == 3
