"""Property: any sequence of appends, settles, commits, clean reopens, crashes and torn
appends keeps every accepted, unsettled envelope, byte for byte and in order."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.producers._outbox_codec import OutboxEntry, encode_entry
from exchange.producers.outbox import Outbox, Spool

_Op = tuple[str, int]

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 4)),
        st.tuples(st.just("settle"), st.integers(0, 1000)),
        st.tuples(st.just("commit"), st.just(0)),
        st.tuples(st.just("reopen"), st.just(0)),
        st.tuples(st.just("crash"), st.just(0)),
        st.tuples(st.just("torn_crash"), st.integers(1, 200)),
    ),
    max_size=40,
)


def _pending(outbox: Outbox) -> list[OutboxEntry]:
    out: list[OutboxEntry] = []
    seq = 0
    while batch := outbox.read_from(seq):
        out += batch
        seq = batch[-1].seq + 1
    return out


def _crash(outbox: Outbox) -> None:
    # What a SIGKILL leaves: files as written, nothing committed since the last commit.
    outbox._close_files()  # simulating a crash needs the raw release


@settings(max_examples=100, deadline=None)
@given(ops=_ops, sizes=st.lists(st.integers(1, 600), min_size=1, max_size=8))
def test_accepted_envelopes_are_never_lost_or_reordered(ops: list[_Op], sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        outbox = Outbox(directory, segment_bytes=1500)
        accepted: dict[int, Spool] = {}
        settled: set[int] = set()  # settled in this session (in memory)
        durable = 0  # the committed low-water mark
        for n, (op, arg) in enumerate(ops):
            if op == "append":
                items = [
                    ("t", b"k%d" % n, "seizure", bytes([n % 256]) * sizes[i % len(sizes)])
                    for i in range(arg)
                ]
                for entry, item in zip(outbox.append(items), items, strict=True):
                    accepted[entry.seq] = item
            elif op == "settle":
                open_seqs = [s for s in sorted(accepted) if s >= durable and s not in settled]
                if open_seqs:
                    seq = open_seqs[arg % len(open_seqs)]
                    outbox.settle(seq)
                    settled.add(seq)
            elif op == "commit":
                outbox.commit()
                durable = outbox.settled_below
            else:
                if op == "reopen":
                    outbox.close()
                    durable = outbox.settled_below
                else:
                    _crash(outbox)
                    if op == "torn_crash":
                        # An append that never reached its fsync: part of one more entry.
                        torn = encode_entry(OutboxEntry(outbox.next_seq, "t", b"k", "x", b"z" * 99))
                        last = sorted(directory.glob("*.seg"))[-1]
                        with last.open("ab") as f:
                            f.write(torn[: arg % len(torn)])
                outbox = Outbox(directory, segment_bytes=1500)
                settled = set()  # in-memory settles die with the process
                assert outbox.settled_below == durable
            expected = [
                s for s in sorted(accepted) if s >= outbox.settled_below and s not in settled
            ]
            got = _pending(outbox)
            assert [e.seq for e in got] == expected
            assert all((e.topic, e.key, e.record_type, e.envelope) == accepted[e.seq] for e in got)
            assert outbox.pending == len(expected)
        outbox.close()
