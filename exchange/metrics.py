"""Prometheus metrics of the exchange.

One :class:`ExchangeMetrics` holds every metric; producers and consumers take one (the
process-wide :data:`DEFAULT_METRICS` unless a test passes its own registry). Labels are
bounded sets (agency ids, record types, suites, reason codes): never message ids or other
unbounded values, which would grow the registry without limit.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from exchange.crypto.keys import AgencyKey

__all__ = ["DEFAULT_METRICS", "ExchangeMetrics", "serve_metrics"]

# Seal/open take tens of microseconds amortized and milliseconds with a cold key cache.
_CRYPTO_BUCKETS = (
    0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
)  # fmt: skip


class ExchangeMetrics:
    """The exchange's metrics, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.published = Counter(
            "exchange_published_records",
            "Records sealed and acknowledged by the broker.",
            ["sender", "record_type", "suite"],
            registry=r,
        )
        self.publish_failed = Counter(
            "exchange_publish_failed_records",
            "Records the broker did not acknowledge.",
            ["sender", "reason"],
            registry=r,
        )
        self.delivered = Counter(
            "exchange_delivered_records",
            "Records verified, decrypted and stored in the sink.",
            ["recipient", "sender", "record_type"],
            registry=r,
        )
        self.duplicates = Counter(
            "exchange_duplicate_records",
            "Redelivered records recognised by message id and not stored again.",
            ["recipient"],
            registry=r,
        )
        self.quarantined = Counter(
            "exchange_quarantined_messages",
            "Messages sent to quarantine, by reason code.",
            ["recipient", "reason"],
            registry=r,
        )
        self.seal_seconds = Histogram(
            "exchange_seal_seconds",
            "Time to validate, encode and seal one record.",
            ["suite"],
            buckets=_CRYPTO_BUCKETS,
            registry=r,
        )
        self.open_seconds = Histogram(
            "exchange_open_seconds",
            "Time to verify, decrypt and decode one envelope.",
            ["suite"],
            buckets=_CRYPTO_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "exchange_consumer_lag_messages",
            "High watermark minus the next offset to read, per partition.",
            ["recipient", "topic", "partition"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "exchange_outbox_depth_envelopes",
            "Envelopes in the producer's outbox not yet delivered (or failed for good).",
            ["sender"],
            registry=r,
        )
        self.outbox_bytes = Gauge(
            "exchange_outbox_depth_bytes",
            "Bytes the producer's outbox segments take on disk.",
            ["sender"],
            registry=r,
        )
        self.outbox_spooled = Counter(
            "exchange_outbox_spooled_envelopes",
            "Envelopes kept in the outbox because the brokers were unreachable.",
            ["sender"],
            registry=r,
        )
        self.outbox_drained = Counter(
            "exchange_outbox_drained_envelopes",
            "Spooled envelopes delivered once the brokers answered again.",
            ["sender"],
            registry=r,
        )
        self.key_age = Gauge(
            "exchange_key_age_seconds",
            "Age of the agency key generation in use, per suite.",
            ["agency", "suite"],
            registry=r,
        )

    def observe_key(self, key: AgencyKey, *, now: datetime) -> None:
        """Set the age of the key generation ``key`` is (rotation is due when it grows old)."""
        age = (now - key.not_before).total_seconds()
        self.key_age.labels(agency=key.agency_id, suite=key.suite.value).set(max(age, 0.0))


#: Metrics of this process, served by :func:`serve_metrics`.
DEFAULT_METRICS = ExchangeMetrics()


def serve_metrics(
    port: int, *, metrics: ExchangeMetrics = DEFAULT_METRICS, address: str = "127.0.0.1"
) -> None:
    """Serve ``/metrics`` on ``address:port`` from a daemon thread.

    Binds to loopback by default: exposing metrics beyond the host is a deployment decision.
    """
    start_http_server(port, addr=address, registry=metrics.registry)
