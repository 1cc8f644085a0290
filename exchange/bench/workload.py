"""The load that ``exchange bench`` and ``exchange soak`` put through a broker.

One sender (MEX-FGR) sealing seeded seizure records to one recipient (USA-ATF): their
in-memory keys (derived from a fixed seed, so producer and consumer processes hold the same
key pairs without sharing files), the record stream, the secure clients built on them, and
the paced open-loop schedule. Unstable module: the benchmark and soak workers are its callers.
"""

from __future__ import annotations

import resource
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from exchange.audit.agency import AgencyAudit
from exchange.consumers.secure import RecordHandler, SecureConsumer
from exchange.crypto.keys import SuiteId
from exchange.crypto.testing import InMemoryAgency, InMemoryTrust
from exchange.policy import allowed_recipients, summary_from_handling
from exchange.producers.secure import SecureProducer
from exchange.records import ExchangeRecord
from exchange.records.sample import generate
from exchange.routing import RoutingRule, RoutingTable, exchange_topic, reach_for
from exchange.sinks import Sink

__all__ = [
    "RECIPIENT",
    "RECORD_TYPE",
    "SENDER",
    "Keys",
    "Publisher",
    "bench_record_id",
    "keys",
    "paced",
    "peak_rss",
    "record_pool",
    "records",
    "secure_consumer",
    "secure_producer",
    "secure_publisher",
    "topic_for",
]

SENDER, RECIPIENT = "MEX-FGR", "USA-ATF"
RECORD_TYPE = "seizure"
_KEY_SEED = b"exchange-bench-keys-v1"
_RECORD_SEED = 7
_IDS = uuid.UUID("6f1c3c35-2a47-4b53-9a55-5d1f0e0b4d21")
#: A producer behind schedule never waits, so it serves its delivery reports (and, with an
#: audit log, writes their entries) at least this often, as a long-running publisher must.
_IDLE_BEHIND_NS = 5_000_000


def topic_for(variant: str, prefix: str) -> str:
    """The topic a variant's records go to under ``prefix`` (``plain`` or a suite)."""
    if variant == "plain":
        return f"{prefix}plain.{RECORD_TYPE}"
    return exchange_topic(SENDER, reach_for(SENDER, [RECIPIENT]), RECORD_TYPE, prefix=prefix)


@dataclass(frozen=True)
class Keys:
    """Both agencies' in-memory keys on one suite, and the trust store of both."""

    sender: InMemoryAgency
    recipient: InMemoryAgency
    trust: InMemoryTrust


def keys(suite: SuiteId) -> Keys:
    """The sender's and recipient's keys on ``suite``, the same in every process.

    Each agency also holds a ``classic`` generation whatever the suite: its Ed25519 key signs
    the agency's audit checkpoints and witness cosignatures (exchange.audit.note).
    """

    def agency(agency_id: str) -> InMemoryAgency:
        held = InMemoryAgency(agency_id)  # randomized signatures, as in production
        for generation in dict.fromkeys((suite, SuiteId.CLASSIC)):
            held.add_generation(generation, seed=_KEY_SEED)
        return held

    mex, usa = agency(SENDER), agency(RECIPIENT)
    return Keys(mex, usa, InMemoryTrust.of(mex, usa))


def peak_rss() -> int:
    """This process's peak RSS in bytes (``getrusage`` high-water mark)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def record_pool(size: int) -> list[ExchangeRecord]:
    """A seeded pool of ``size`` sample records whose handling releases them to the
    recipient (some are domestic only), so every variant moves exactly the same records."""
    generated = generate(RECORD_TYPE, count=2 * size, seed=_RECORD_SEED, originator=SENDER)
    return [r for r in generated if _releasable(r)][:size]


def bench_record_id(index: int) -> str:
    """The benchmark's record id of message ``index`` (a UUIDv5: stable across runs)."""
    return str(uuid.uuid5(_IDS, str(index)))


def records(
    pool: list[ExchangeRecord], count: int, record_id: Callable[[int], str] = bench_record_id
) -> Iterator[tuple[str, ExchangeRecord]]:
    """``count`` records cycling over ``pool``, message ``i`` with record id ``record_id(i)``."""
    for i in range(count):
        base = pool[i % len(pool)]
        rid = record_id(i)
        meta = base.meta.model_copy(update={"record_id": rid})
        yield rid, base.model_copy(update={"meta": meta})


def _releasable(record: ExchangeRecord) -> bool:
    handling = summary_from_handling(record.handling)
    return RECIPIENT in allowed_recipients(handling, frozenset({RECIPIENT}), sender=SENDER)


def secure_producer(
    bootstrap: str, held: Keys, suite: SuiteId, prefix: str, *, audit: AgencyAudit | None = None
) -> SecureProducer:
    """The sender's ``SecureProducer``, routing every seizure record to the recipient."""
    rule = RoutingRule(senders=[SENDER], record_types=[RECORD_TYPE], recipients=[RECIPIENT])
    return SecureProducer(
        bootstrap=bootstrap, sender=held.sender, trust=held.trust,
        routing=RoutingTable(rules=[rule]), suite=suite, topic_prefix=prefix, audit=audit,
    )  # fmt: skip


def secure_consumer(
    bootstrap: str,
    held: Keys,
    *,
    sink: Sink,
    group: str,
    prefix: str,
    handler: RecordHandler,
    audit: AgencyAudit | None = None,
) -> SecureConsumer:
    """The recipient's ``SecureConsumer`` of every exchange topic under ``prefix``."""
    return SecureConsumer(
        bootstrap=bootstrap, recipient=held.recipient, trust=held.trust, sink=sink,
        group_id=group, topic_prefix=prefix, handler=handler, audit=audit,
    )  # fmt: skip


@dataclass
class Publisher:
    """What the paced loop needs of a producer."""

    publish: Callable[[ExchangeRecord, str], None]
    idle: Callable[[], None]
    flush: Callable[[], object]
    close: Callable[[], None]
    value_bytes: Callable[[], int]


def paced(
    rate: float,
    stream: Iterator[tuple[str, ExchangeRecord]],
    out: Publisher,
    on_due: Callable[[int, str, int], None],
    *,
    start_ns: int | None = None,
) -> None:
    """Open loop: record ``i`` is due at ``t0 + i / rate``; its latency counts from then, so a
    producer that falls behind shows it as latency (no coordinated omission).

    Args:
        on_due: called as ``on_due(i, record_id, due_wall_ns)`` just before record ``i`` is
            published (``due_wall_ns`` in ``time.time_ns()`` terms).
        start_ns: wall time (``time.time_ns()``) record 0 is due; default now.
    """
    period_ns = int(1e9 / rate)
    wall0 = time.time_ns()
    t0 = time.perf_counter_ns()
    if start_ns is not None:  # the schedule's origin, on the monotonic clock
        t0 += start_ns - wall0
        wall0 = start_ns
    idled = t0
    for i, (rid, record) in enumerate(stream):
        due = t0 + i * period_ns
        if (now := time.perf_counter_ns()) - idled >= _IDLE_BEHIND_NS:
            out.idle()  # behind schedule: still serve delivery reports now and then
            idled = now
        while (now := time.perf_counter_ns()) < due:
            out.idle()  # serves delivery reports; the secure producer seals a lingering batch
            idled = now
            if due - now > 300_000:
                time.sleep(min((due - now) / 1e9 - 0.0002, 0.001))
        on_due(i, rid, wall0 + (due - t0))
        out.publish(record, rid)


def secure_publisher(producer: SecureProducer) -> Publisher:
    """``producer`` as the paced loop drives it (the record id is the Kafka key already)."""

    def publish(record: ExchangeRecord, _rid: str) -> None:
        producer.publish(record)

    return Publisher(
        publish, producer.poll, producer.flush, producer.close, lambda: producer.summary.bytes
    )
