"""A consumer SIGKILLed mid-stream and restarted stores every record exactly once.

``exchange consume`` runs as a real process against the real broker; the test kills it with
SIGKILL (no handler, no flush, no commit) at several points of a stream of thousands of
envelopes, restarts it, and finally lets it drain with ``--until-idle``. The sink keeps
records and offsets in one transaction, so the result must be every record once, in SQLite
and in PostgreSQL alike.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from exchange.quarantine import read_quarantine
from exchange.records import ExchangeRecord
from exchange.records.sample import generate_corpus
from exchange.sinks import WINDOW_SIZE, open_sink
from tests.integration.conftest import WaitUntil
from tests.integration.postgres import scratch_database
from tests.integration.secure_fixtures import (  # noqa: F401  # fixtures are imported explicitly, by name
    Pki,
    cli_env,
    consume_until,
    new_prefix,
    pki,
    publish,
    readdressed,
)

SENDER, RECIPIENT = "MEX-FGR", "USA-ATF"
#: Cases of the sample corpus: about eight records each, all five families.
CASES = 400
#: Fractions of the stream stored when the consumer is SIGKILLed.
KILL_POINTS = (0.1, 0.4, 0.7)


@dataclass(frozen=True)
class Stream:
    prefix: str
    record_ids: frozenset[str]


def _records(seed: int) -> list[ExchangeRecord]:
    corpus = generate_corpus(seed, cases=CASES)
    return [readdressed(r, SENDER, RECIPIENT) for r in corpus.records()]


@pytest.fixture(scope="module")
def stream(pki: Pki, kafka_bootstrap: str) -> Stream:  # noqa: F811  # the imported fixture
    """Over 3000 envelopes of every family, already on the topics, from one producer.

    One producer id and epoch for the whole stream, so its sequences span every topic and
    partition and run far past the sinks' replay window: the consumer reads the partitions
    in whatever order Kafka fetches them, and restarts in the middle of them.
    """
    prefix = new_prefix()
    records = _records(2026)
    assert len(records) >= 3000  # nearly three replay windows
    assert len(records) > 2 * WINDOW_SIZE
    assert publish(pki, kafka_bootstrap, prefix, SENDER, records).delivered == len(records)
    return Stream(prefix, frozenset(r.meta.record_id for r in records))


@pytest.fixture(params=["sqlite", "postgresql"])
def sink_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'atf.db'}"
        return
    with scratch_database(request.getfixturevalue("postgres_dsn")) as url:
        yield url


def _tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-15:])


def _kill_after(
    command: list[str],
    env: dict[str, str],
    *,
    stored: Callable[[], int],
    target: int,
    log: Path,
    wait_until: WaitUntil,
) -> int:
    """Start a consumer, SIGKILL it once ``stored()`` reaches ``target``; return the count."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=out)
    try:
        wait_until(
            lambda: stored() >= target or proc.poll() is not None,
            timeout=90,
            message=f"the consumer stored {target} records",
        )
        assert proc.poll() is None, f"consumer exited early:\n{_tail(log)}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    return stored()


def test_consumer_sigkilled_mid_stream_stores_every_record_exactly_once(
    *,
    stream: Stream,
    sink_url: str,
    pki: Pki,  # noqa: F811
    kafka_bootstrap: str,
    wait_until: WaitUntil,
    tmp_path: Path,
) -> None:
    total = len(stream.record_ids)
    group = f"{stream.prefix}crash-{sink_url.partition(':')[0]}"
    command = [
        sys.executable, "-m", "exchange", "consume", "--as", RECIPIENT, "--sink", sink_url,
        "--group", group, "--batch-size", "50",
        # Static membership: the restarted process takes the partitions back at once instead
        # of waiting out the killed member's session timeout.
        "--instance-id", f"{group}-1",
    ]  # fmt: skip
    env = {**os.environ, **cli_env(pki, kafka_bootstrap, stream.prefix)}
    killed_at = []
    with open_sink(sink_url) as reader:  # creates the store; the consumers share it
        for run, fraction in enumerate(KILL_POINTS):
            killed_at.append(
                _kill_after(
                    command,
                    env,
                    stored=reader.count,
                    wait_until=wait_until,
                    target=max(int(total * fraction), reader.count() + 1),
                    log=tmp_path / f"consume-{run}.log",
                )
            )

        final = subprocess.run(
            [*command, "--until-idle", "3"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert final.returncode == 0, final.stderr
        records = list(reader.records())

    assert any(0 < k < total for k in killed_at), f"no kill landed mid-stream: {killed_at}"
    assert len(records) == total
    assert len({r.message_id for r in records}) == total
    assert {r.record_id for r in records} == stream.record_ids
    assert final.stdout.strip().endswith("quarantined 0"), final.stdout
    # Nothing legitimate was refused along the way either (no replay, no rollback).
    assert list(read_quarantine(kafka_bootstrap, RECIPIENT, topic_prefix=stream.prefix)) == []


def test_one_producer_stream_longer_than_the_replay_window_is_delivered(
    pki: Pki,  # noqa: F811
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    prefix = new_prefix()
    records = _records(7)
    assert len(records) > 2 * WINDOW_SIZE
    publish(pki, kafka_bootstrap, prefix, SENDER, records)
    with open_sink(f"sqlite:{tmp_path / 'atf.db'}") as sink:
        summary = consume_until(
            pki, kafka_bootstrap, prefix, RECIPIENT, sink, messages=len(records)
        )
    assert summary.quarantined_total == 0
    assert summary.delivered == len(records)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _delivered_metric(port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0.0  # not serving yet
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("exchange_delivered_records_total{")
    )


def test_consumer_stops_cleanly_on_sigterm_and_serves_metrics(
    stream: Stream,
    pki: Pki,  # noqa: F811
    kafka_bootstrap: str,
    wait_until: WaitUntil,
    tmp_path: Path,
) -> None:
    port = _free_port()
    sink_url = f"sqlite:{tmp_path / 'atf.db'}"
    command = [
        sys.executable, "-m", "exchange", "consume", "--as", RECIPIENT, "--sink", sink_url,
        "--group", f"{stream.prefix}sigterm", "--batch-size", "20", "--metrics-port", str(port),
    ]  # fmt: skip
    env = {**os.environ, **cli_env(pki, kafka_bootstrap, stream.prefix)}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(
            lambda: _delivered_metric(port) > 0 or proc.poll() is not None,
            timeout=60,
            message="/metrics counts delivered records",
        )
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()
    assert b"SIGTERM: finishing the current batch" in err
    with open_sink(sink_url) as sink:
        stored = sink.count()
    # The summary agrees with the store: the batch in hand was finished, not cut.
    assert out.decode().startswith(f"{RECIPIENT}: delivered {stored}, duplicates 0")
    assert stored > 0
