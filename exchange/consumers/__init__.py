"""Consumers: Kafka into an agency's store.

:class:`SecureConsumer` hands the sink only verified, decrypted, schema-valid records that
are addressed and released to its agency; everything else goes to ``quarantine.<agency>``
with the original bytes and a reason code, and consumption goes on::

    from exchange.consumers import SecureConsumer
    from exchange.sinks import open_sink

    with open_sink("sqlite:feeds.db") as sink, SecureConsumer(
        bootstrap="127.0.0.1:19092", recipient=atf_keys, trust=trust, sink=sink
    ) as consumer:
        summary = consumer.run(until_idle=10.0)   # delivered, duplicates, quarantined...

:class:`UnsealedAvroConsumer` reads the unsealed baseline's plain Avro; it checks nothing but
the schema. Never use it between agencies.
"""

from __future__ import annotations

from exchange.consumers.secure import ConsumeSummary, RecordHandler, SecureConsumer
from exchange.consumers.unsealed import ConsumedRecord, UnsealedAvroConsumer

__all__ = [
    "ConsumeSummary",
    "ConsumedRecord",
    "RecordHandler",
    "SecureConsumer",
    "UnsealedAvroConsumer",
]
