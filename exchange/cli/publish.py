"""``exchange publish``: seal JSON-lines records and publish them as one agency.

Three passes, so a mistake costs nothing::

    1. read and validate every line (nothing sent; the first bad line is reported)
    2. address every record (routing table ∩ handling, narrowed by --to; nothing sent)
    3. seal, write to the agency's outbox, produce, then wait for every delivery report

Sealed envelopes go to a durable outbox on disk first ($EXCHANGE_HOME/outbox/AGENCY, or
--outbox DIR): if the brokers are unreachable, they stay there (the command exits 3 saying
how many) and the next `exchange publish --as AGENCY` sends them first, in order.

Example::

    EXCHANGE_PKI_PASSPHRASE_FILE=~/.exchange-pass \\
        exchange publish --as MEX-FGR --type seizure --file recs.jsonl --to USA-ATF
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from exchange.cli._agency import (
    AGENCY_OPTION,
    agency_connection,
    load_agency,
    load_routing,
    open_audit,
)
from exchange.cli._context import CliContext, pass_cli
from exchange.crypto.keys import SuiteId
from exchange.errors import PolicyError, RecordValidationError, SpooledError
from exchange.producers.outbox import Outbox
from exchange.producers.secure import PublishSummary, SecureProducer
from exchange.records import (
    MAX_RECORD_BYTES,
    RECORD_TYPE_NAMES,
    ExchangeRecord,
    RecordType,
    record_type,
)

__all__ = ["publish"]

_Line = tuple[int, ExchangeRecord]


#: Longest line read: a record at its bound plus "\r\n" and a byte to tell it is longer.
_MAX_LINE = MAX_RECORD_BYTES + 3


def read_records(stream: BinaryIO, name: str, rtype: RecordType) -> list[_Line]:
    """Validate every non-blank line of ``stream`` as a ``rtype`` record.

    Lines are read at most :data:`_MAX_LINE` bytes at a time, so a huge line (or endless
    stdin without a newline) is refused without being held in memory.

    Returns:
        ``(line number, record)`` pairs, in file order.

    Raises:
        RecordValidationError: the first bad line, as ``NAME:LINE: what is wrong``, or a
            file with no record at all.
    """
    records: list[_Line] = []
    for number, raw in enumerate(iter(lambda: stream.readline(_MAX_LINE), b""), start=1):
        if len(raw) == _MAX_LINE and not raw.endswith(b"\n"):
            raise RecordValidationError(
                f"{name}:{number}: line longer than the {MAX_RECORD_BYTES}-byte record bound; "
                "fix the line and rerun",
                record_type=rtype.name,
            )
        line = raw.strip()
        if not line:
            continue  # blank lines (a trailing newline, spacing) carry no record
        try:
            records.append((number, rtype.from_json(line.decode("utf-8"))))
        except UnicodeDecodeError:
            raise RecordValidationError(
                f"{name}:{number}: not UTF-8 text; fix the line and rerun"
            ) from None
        except RecordValidationError as exc:
            # The message names the field, never its value (it may be personal data).
            raise RecordValidationError(
                f"{name}:{number}: {exc}; fix the line and rerun", record_type=rtype.name
            ) from None
    if not records:
        raise RecordValidationError(f"{name}: no records; nothing published")
    return records


def _address_all(
    producer: SecureProducer,
    rtype: RecordType,
    records: Sequence[_Line],
    to: Sequence[str] | None,
    name: str,
) -> list[frozenset[str]]:
    """Recipients of every record, before anything is sealed or sent."""
    plan = []
    for number, record in records:
        try:
            plan.append(producer.recipients_for(rtype, record, to=to))
        except PolicyError as exc:
            raise PolicyError(f"{name}:{number}: {exc}; nothing was published") from None
    return plan


def _summary_line(
    agency: str, type_name: str, summary: PublishSummary, plan: Sequence[frozenset[str]]
) -> str:
    per_agency = Counter(a for recipients in plan for a in recipients)
    sizes = [len(r) for r in plan] or [0]
    spread = f"{min(sizes)}" if min(sizes) == max(sizes) else f"{min(sizes)}-{max(sizes)}"
    tally = ", ".join(f"{a} {n}" for a, n in sorted(per_agency.items())) or "none"
    return (
        f"published {summary.accepted} {type_name} record(s) as {agency}: "
        f"delivered {summary.delivered}, {summary.bytes} bytes, "
        f"recipients per record {spread} ({tally})"
        + (f"; {summary.spooled} waiting in the outbox" if summary.spooled else "")
        + (f"; {summary.drained} from an earlier run's outbox" if summary.drained else "")
    )


def _check_to(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    if len(set(value)) != len(value):
        raise click.BadParameter("an agency is named twice")
    return value


@click.command()
@AGENCY_OPTION
@click.option(
    "--type", "type_name", type=click.Choice(RECORD_TYPE_NAMES), required=True,
    help="Record family of every line.",
)  # fmt: skip
@click.option(
    "--file", "source", required=True, metavar="PATH",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=str),
    help="JSON lines, one record each (Avro field names); '-' reads stdin.",
)  # fmt: skip
@click.option(
    "--to", "to", multiple=True, callback=_check_to, metavar="AGENCY",
    help="Narrow the recipients to these agencies (repeatable); each must be among the "
    "routing table's targets that the record's handling releases it to.",
)  # fmt: skip
@click.option(
    "--suite", type=click.Choice([s.value for s in SuiteId]), default=SuiteId.CLASSIC.value,
    show_default=True, help="Cipher suite of every envelope.",
)  # fmt: skip
@click.option(
    "--outbox", "outbox_dir", metavar="DIR", default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Durable outbox of sealed envelopes not yet acknowledged "
    "[$EXCHANGE_OUTBOX_DIR/AGENCY, else $EXCHANGE_HOME/outbox/AGENCY].",
)  # fmt: skip
@pass_cli
def publish(
    cli: CliContext,
    *,
    agency: str,
    type_name: str,
    source: str,
    to: tuple[str, ...],
    suite: str,
    outbox_dir: Path | None,
) -> None:
    """Validate, address, seal and publish records as AGENCY.

    Recipients come from the routing table ($EXCHANGE_HOME/routing.toml) intersected with each
    record's handling, narrowed by --to. Nothing is published when any line is invalid or any
    record cannot be addressed. Envelopes the brokers have not acknowledged stay in the
    outbox and are sent first by the next publish as AGENCY.
    """
    rtype = record_type(type_name)
    name = "<stdin>" if source == "-" else source
    if source == "-":
        records = read_records(sys.stdin.buffer, name, rtype)
    else:
        # Opened here, not by click, so the file is closed even when another option fails.
        with Path(source).open("rb") as stream:
            records = read_records(stream, name, rtype)
    settings = cli.settings
    routing = load_routing(settings.routing_path)
    bootstrap, security = agency_connection(settings, agency)
    me = load_agency(settings, agency)
    narrowed = list(to) or None
    outbox = Outbox(outbox_dir or settings.outbox_path(agency), max_bytes=settings.outbox_max_bytes)
    plan: list[frozenset[str]] = []
    try:
        with (
            outbox,
            open_audit(settings, me, bootstrap, config_overrides=security) as audit,
            SecureProducer(
                bootstrap=bootstrap, sender=me.keys, trust=me.trust, routing=routing,
                suite=SuiteId(suite), topic_prefix=settings.topic_prefix, audit=audit,
                config_overrides=security, outbox=outbox,
            ) as producer,
        ):  # fmt: skip
            plan = _address_all(producer, rtype, records, narrowed, name)
            _publish_all(
                producer, records=records, to=narrowed, name=name, plan=plan, type_name=type_name
            )
    except SpooledError:
        # Say what was done before the one-line error says what waits (exit 3).
        click.echo(_summary_line(agency, type_name, producer.summary, plan))
        raise
    click.echo(_summary_line(agency, type_name, producer.summary, plan))


def _publish_all(
    producer: SecureProducer,
    *,
    records: Sequence[_Line],
    to: Sequence[str] | None,
    name: str,
    plan: Sequence[frozenset[str]],
    type_name: str,
) -> None:
    err = Console(stderr=True)
    progress = Progress(
        TextColumn("publishing"), BarColumn(), MofNCompleteColumn(),
        console=err, transient=True, disable=not err.is_terminal,
    )  # fmt: skip
    with progress:
        task = progress.add_task("publish", total=len(records))
        for index, (number, record) in enumerate(records):
            try:
                producer.publish(record, to=to)
            except PolicyError as exc:
                # Checks that depend on the moment (retention) can still refuse a record:
                # deliver what came before it, report, and stop.
                done = producer.flush()
                click.echo(_summary_line(producer.agency_id, type_name, done, plan[:index]))
                raise PolicyError(
                    f"{name}:{number}: {exc}; stopped there: {done.delivered} earlier record(s) "
                    "delivered, nothing after it published"
                ) from None
            progress.advance(task)
