"""The exception hierarchy of the exchange bus.

Every error the library raises on purpose derives from :class:`ExchangeError`; the CLI catches
it once, prints :meth:`ExchangeError.diagnostics` as one line and exits non-zero.

Two branches tell callers what to do (python-tuf, sigstore-python):

::

    ExchangeError
    ├── DataError                 the data or the peer is wrong or hostile: alert, never retry
    │   ├── RecordValidationError     a record does not satisfy its model or schema
    │   ├── SchemaError               an Avro schema is invalid or breaks compatibility
    │   ├── IntegrityError            any integrity failure (opaque; reason code kept aside)
    │   ├── PolicyError               handling rules forbid the operation
    │   └── OutboxCorruptError        the producer's outbox is damaged beyond a torn last write
    ├── InfrastructureError       something we depend on failed: retry may help
    │   ├── BrokerError               Kafka (or the local broker runtime) failed
    │   │   ├── OutboxFullError           brokers unreachable and the outbox is at its bound
    │   │   └── SpooledError              envelopes wait in the outbox, not yet delivered
    │   ├── OutboxError               the producer's outbox directory cannot be used
    │   └── ToolMissingError          java or mvn is not installed
    └── ConfigurationError        settings are missing or contradictory: fix and rerun

Programmer errors (wrong argument types, impossible values passed by code) stay built-in
``TypeError``/``ValueError``.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "BrokerError",
    "ConfigurationError",
    "DataError",
    "ExchangeError",
    "InfrastructureError",
    "IntegrityError",
    "IntegrityReason",
    "OutboxCorruptError",
    "OutboxError",
    "OutboxFullError",
    "PolicyError",
    "RecordValidationError",
    "SchemaError",
    "SpooledError",
    "ToolMissingError",
]


class ExchangeError(Exception):
    """Root of every error the exchange raises on purpose."""

    #: Whether retrying the same operation later may succeed.
    retriable: bool = False

    def diagnostics(self) -> str:
        """One human sentence: what went wrong and what to do next."""
        return str(self)


class DataError(ExchangeError):
    """The data or the peer is wrong or hostile. Retrying will not help; alert instead."""


class RecordValidationError(DataError):
    """A record does not satisfy its pydantic model or its Avro schema."""

    def __init__(self, message: str, *, record_type: str | None = None) -> None:
        super().__init__(message)
        self.record_type = record_type


class SchemaError(DataError):
    """An Avro schema cannot be parsed or breaks FULL_TRANSITIVE compatibility."""


class IntegrityReason(StrEnum):
    """Machine-readable reason for an integrity failure.

    Kept for quarantine records, metrics and the audit trail only: callers see one opaque
    :class:`IntegrityError` whatever the reason, so an attacker learns nothing from the error.
    """

    MALFORMED = "malformed"
    OVERSIZED = "oversized"
    UNKNOWN_VERSION = "unknown_version"
    UNKNOWN_SUITE = "unknown_suite"
    BAD_SIGNATURE = "bad_signature"
    BAD_INCLUSION_PROOF = "bad_inclusion_proof"
    UNTRUSTED_SENDER = "untrusted_sender"
    REVOKED_KEY = "revoked_key"
    KEY_NOT_VALID_AT_SIGNING_TIME = "key_not_valid_at_signing_time"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    NOT_A_RECIPIENT = "not_a_recipient"
    BAD_KEY_WRAP = "bad_key_wrap"
    DECRYPTION_FAILED = "decryption_failed"
    COMMITMENT_MISMATCH = "commitment_mismatch"
    BINDING_MISMATCH = "binding_mismatch"
    SENDER_NOT_AUTHORIZED = "sender_not_authorized"
    REPLAY = "replay"
    ROLLBACK = "rollback"
    SCHEMA_MISMATCH = "schema_mismatch"
    #: the header's suite is not the suite of the sender key it names (downgrade attempt)
    SUITE_MISMATCH = "suite_mismatch"
    #: the signed recipients or the reader are not allowed by the signed handling summary
    HANDLING_VIOLATION = "handling_violation"


class IntegrityError(DataError):
    """An envelope failed an integrity check.

    The message is deliberately the same for every cause. The precise cause is in
    :attr:`reason`, which must only flow to quarantine records, metrics and the audit log.
    """

    _OPAQUE_MESSAGE = "envelope failed integrity verification"

    def __init__(self, reason: IntegrityReason) -> None:
        super().__init__(self._OPAQUE_MESSAGE)
        self.reason = reason

    def __repr__(self) -> str:
        # The reason is not secret from the operator, but keep repr() as opaque as str()
        # so a stray log line or traceback in an error response reveals nothing.
        return f"{type(self).__name__}()"

    def diagnostics(self) -> str:
        return (
            f"{self._OPAQUE_MESSAGE}; the message was quarantined, see the quarantine record "
            "or the audit log for the reason"
        )


class PolicyError(DataError):
    """Handling rules (TLP, releasability, caveats, publishing rights) forbid the operation."""


class InfrastructureError(ExchangeError):
    """Something the exchange depends on failed. Retrying later may help."""

    retriable = True


class BrokerError(InfrastructureError):
    """Kafka, or the local broker runtime, failed."""


class OutboxFullError(BrokerError):
    """The outbox holds its byte bound of undelivered envelopes: the record was not accepted.

    The brokers have been unreachable for long enough to fill the outbox; retry once
    :meth:`~exchange.producers.SecureProducer.flush` has drained some of it.
    """


class SpooledError(BrokerError):
    """Envelopes are safe in the outbox on disk but the brokers have not acknowledged them.

    Nothing is lost: the next producer on the same outbox sends them first, in order.

    Attributes:
        spooled: envelopes still waiting in the outbox.
        directory: the outbox directory.
    """

    def __init__(self, message: str, *, spooled: int, directory: str) -> None:
        super().__init__(message)
        self.spooled = spooled
        self.directory = directory


class OutboxError(InfrastructureError):
    """The producer's outbox directory cannot be used (held by another producer, disk error)."""


class OutboxCorruptError(DataError):
    """The outbox is damaged in a way a crash cannot explain; it is never repaired silently.

    A torn last append (never ``fsync``ed, so never reported accepted) is cut off on open;
    damage anywhere else raises this, because cutting it would drop accepted envelopes.
    """

    def diagnostics(self) -> str:
        return f"{self}; the outbox was not opened; keep the directory and restore or inspect it"


class ToolMissingError(InfrastructureError):
    """A required external tool (java, mvn) is not installed."""

    retriable = False


class ConfigurationError(ExchangeError):
    """Settings are missing, malformed or contradictory."""
