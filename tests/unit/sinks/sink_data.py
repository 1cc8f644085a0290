"""Deterministic delivery streams for the sink tests (shared by unit, integration and the crash
child process, which imports this file from its own directory)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from exchange.sinks import DeliveredRecord

__all__ = ["TOPIC", "make_record", "make_stream", "one_producer_by_partition"]

TOPIC = "exchange.mex-fgr.bilateral.seizure"
_EPOCH_START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def make_record(
    sequence: int,
    *,
    message_id: str | None = None,
    sender: str = "MEX-FGR",
    producer_id: str = "fgr-producer-1",
    epoch: int = 0,
    topic: str = TOPIC,
    partition: int = 0,
    offset: int | None = None,
) -> DeliveredRecord:
    """One record; by default its message id, record id and offset follow ``sequence``."""
    mid = message_id or f"{sender}/{producer_id}/{epoch}/{sequence}"
    return DeliveredRecord(
        message_id=mid,
        sender=sender,
        producer_id=producer_id,
        producer_epoch=epoch,
        sequence=sequence,
        record_type="seizure",
        record_id=f"rec-{mid}",
        topic=topic,
        partition=partition,
        offset=sequence if offset is None else offset,
        created_at=_EPOCH_START + timedelta(seconds=sequence),
        record_json=json.dumps({"meta": {"recordId": f"rec-{mid}"}, "n": sequence}),
    )


def make_stream(count: int, *, producers: int = 2, partitions: int = 2) -> list[DeliveredRecord]:
    """``count`` records in Kafka consumption order.

    Producers take turns; each spreads its sequence over the partitions round-robin, and
    offsets grow per partition, as a consumer reading the partitions in this order sees them.
    """
    next_offset = [0] * partitions
    next_sequence = [0] * producers
    stream = []
    for n in range(count):
        producer = n % producers
        sequence = next_sequence[producer]
        next_sequence[producer] += 1
        partition = (n // producers + producer) % partitions
        stream.append(
            make_record(
                sequence,
                producer_id=f"producer-{producer}",
                partition=partition,
                offset=next_offset[partition],
            )
        )
        next_offset[partition] += 1
    return stream


def one_producer_by_partition(count: int, *, partitions: int) -> list[list[DeliveredRecord]]:
    """One producer's ``count`` sequences spread round-robin over ``partitions``, per partition.

    Item ``p`` is partition ``p`` in offset order: what a consumer that fetches one
    partition's whole backlog before the next one sees (librdkafka often does). Within each
    partition the sequences increase with gaps of ``partitions``; across partitions they jump
    back by almost ``count``.
    """
    by_partition: list[list[DeliveredRecord]] = [[] for _ in range(partitions)]
    for sequence in range(count):
        partition = sequence % partitions
        by_partition[partition].append(
            make_record(sequence, partition=partition, offset=len(by_partition[partition]))
        )
    return by_partition
