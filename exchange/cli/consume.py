"""``exchange consume``: an agency's feed into an exactly-once sink.

Runs until idle (``--until-idle``) or until SIGINT/SIGTERM; a signal lets the batch in hand
finish (stored with its offsets in one transaction) before the consumer closes, so stopping
never loses or duplicates a record. A SIGKILL is safe too: the sink holds the offsets, and the
next run resumes there.

Example::

    exchange consume --as USA-ATF --sink sqlite:feeds.db --until-idle 10 --metrics-port 9464
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import click

from exchange._internal.heap import settle_heap_for_streaming
from exchange.cli._agency import AGENCY_OPTION, agency_connection, load_agency, open_audit
from exchange.cli._context import CliContext, pass_cli
from exchange.consumers.secure import DEFAULT_STALL_TIMEOUT_S, ConsumeSummary, SecureConsumer
from exchange.metrics import serve_metrics
from exchange.sinks import open_sink, redact_dsn

__all__ = ["consume", "summary_line"]

#: Seconds between progress lines on stderr.
PROGRESS_EVERY_S = 10.0


def summary_line(agency: str, summary: ConsumeSummary) -> str:
    """One line: delivered, duplicates, not addressed, quarantined by reason."""
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(summary.quarantined.items()))
    quarantined = f"{summary.quarantined_total}" + (f" ({reasons})" if reasons else "")
    return (
        f"{agency}: delivered {summary.delivered}, duplicates {summary.duplicates}, "
        f"not addressed {summary.not_addressed}, quarantined {quarantined}"
    )


class _StopWhenAsked:
    """``should_stop`` for :meth:`SecureConsumer.run`: a signal flag plus periodic progress.

    The consumer calls it between batches, so a stop request never cuts a batch in half.
    """

    def __init__(self, agency: str, summary: Callable[[], ConsumeSummary]) -> None:
        self._agency = agency
        self._summary = summary
        self._next_report = time.monotonic() + PROGRESS_EVERY_S
        self.requested = threading.Event()

    def __call__(self) -> bool:
        now = time.monotonic()
        if now >= self._next_report:
            click.echo(f"progress {summary_line(self._agency, self._summary())}", err=True)
            self._next_report = now + PROGRESS_EVERY_S
        return self.requested.is_set()

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.requested.is_set():
            # Second signal: the operator insists; stop now (the sink stays consistent).
            raise KeyboardInterrupt
        click.echo(f"{signal.Signals(signum).name}: finishing the current batch", err=True)
        self.requested.set()


@contextmanager
def _graceful(stopper: _StopWhenAsked) -> Iterator[None]:
    previous = {
        sig: signal.signal(sig, stopper.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@click.command()
@AGENCY_OPTION
@click.option(
    "--sink", "sink_url", metavar="URL",
    help="sqlite:PATH, postgresql://... or jsonl:DIR [sqlite:$EXCHANGE_HOME/sinks/AGENCY.db]. "
    "A PostgreSQL password belongs in ~/.pgpass or PGPASSWORD, not in the URL.",
)  # fmt: skip
@click.option(
    "--until-idle", type=click.FloatRange(min=0.1), metavar="SECONDS",
    help="Stop (exit 0) once every assigned partition was read to its end and nothing came "
    "for this long. The clock starts only then: a consumer started while the cluster is down "
    "or restarting waits for it. Default: run until SIGINT/SIGTERM.",
)  # fmt: skip
@click.option(
    "--stall-timeout", type=click.FloatRange(min=1), default=DEFAULT_STALL_TIMEOUT_S,
    show_default=True, metavar="SECONDS",
    help="With --until-idle: exit 3 with a one-line error if this long passes without a "
    "message and without being caught up (cluster unreachable, no partitions assigned).",
)  # fmt: skip
@click.option("--group", "group_id", metavar="ID", help="Consumer group. Default: exchange.AGENCY.")
@click.option(
    "--instance-id", metavar="ID",
    help="Static group membership (group.instance.id): a restarted consumer takes its "
    "partitions back at once instead of after the session timeout. One process per id.",
)  # fmt: skip
@click.option(
    "--batch-size", type=click.IntRange(1, 10_000), default=500, show_default=True,
    help="Messages per poll and per sink transaction.",
)  # fmt: skip
@click.option(
    "--metrics-port", type=click.IntRange(1, 65535), metavar="PORT",
    help="Serve Prometheus /metrics on 127.0.0.1:PORT while running.",
)  # fmt: skip
@pass_cli
def consume(
    cli: CliContext,
    *,
    agency: str,
    sink_url: str | None,
    until_idle: float | None,
    stall_timeout: float,
    group_id: str | None,
    instance_id: str | None,
    batch_size: int,
    metrics_port: int | None,
) -> None:
    """Verify, decrypt and store what is addressed to AGENCY; quarantine the rest.

    Prints one summary line on stdout at the end (delivered, duplicates, not addressed,
    quarantined by reason) and exits 0; with --until-idle, exits 3 with one error line if
    the cluster cannot be reached for --stall-timeout (what was stored is safe).
    """
    settings = cli.settings
    bootstrap, security = agency_connection(settings, agency)
    me = load_agency(settings, agency)
    if sink_url is None:
        sinks = settings.home / "sinks"
        sinks.mkdir(parents=True, exist_ok=True)
        sink_url = f"sqlite:{sinks / agency}.db"
    if metrics_port is not None:
        serve_metrics(metrics_port)
        click.echo(f"metrics on http://127.0.0.1:{metrics_port}/metrics", err=True)
    overrides = {**security, **({"group.instance.id": instance_id} if instance_id else {})}
    with (
        open_sink(sink_url) as sink,
        open_audit(settings, me, bootstrap, config_overrides=security) as audit,
        SecureConsumer(
            bootstrap=bootstrap, recipient=me.keys, trust=me.trust, sink=sink,
            group_id=group_id, topic_prefix=settings.topic_prefix, batch_size=batch_size,
            config_overrides=overrides, audit=audit,
        ) as consumer,
    ):  # fmt: skip
        click.echo(
            f"consuming as {agency} (group {consumer.group_id}) into {redact_dsn(sink_url)}",
            err=True,
        )
        stopper = _StopWhenAsked(agency, lambda: consumer.summary)
        settle_heap_for_streaming()
        with _graceful(stopper):
            summary = consumer.run(
                until_idle=until_idle, should_stop=stopper, stall_timeout=stall_timeout
            )
    click.echo(summary_line(agency, summary))
