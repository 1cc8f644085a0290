"""Producers: records into Kafka.

:class:`SecureProducer` is the one path agencies publish on: validate, encode, address by
routing table and handling, seal (DEK epochs, one signature per batch), produce idempotently
with ``acks=all``, and log each delivery in the agency's audit log::

    from exchange.producers import SecureProducer

    with SecureProducer(bootstrap="127.0.0.1:19092", sender=fgr_keys, trust=trust,
                        routing=routing) as producer:
        recipients = producer.publish(seizure)        # e.g. frozenset({'USA-ATF', 'USA-HSI'})

:class:`UnsealedAvroProducer` writes plain Avro with no signature or encryption: the baseline
benchmarks measure the secure path against. Never use it between agencies.
"""

from __future__ import annotations

from exchange.producers.secure import PublishSummary, SecureProducer
from exchange.producers.unsealed import UnsealedAvroProducer

__all__ = ["PublishSummary", "SecureProducer", "UnsealedAvroProducer"]
