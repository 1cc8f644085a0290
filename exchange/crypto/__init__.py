"""Secure envelope recipes: seal, verify and open signed-and-encrypted messages.

Envelope v1 (docs/envelope.md) is encrypt-then-sign with the context bound into the AEAD
associated data, the HPKE ``info`` and the signature. These recipes generate every key, nonce
and salt themselves; there is no nonce or key argument to get wrong. Raw primitives live in
:mod:`exchange.crypto.hazmat`, which producers and consumers do not import.

Every integrity failure raises the same opaque :class:`~exchange.errors.IntegrityError`;
its ``reason`` is for quarantine records, metrics and the audit log only.

Example::

    from exchange.crypto import SuiteId, open, seal, verify

    blob = seal(avro_bytes, sender=mex_fgr, trust=trust, recipients=["USA-ATF"],
                suite=SuiteId.PQ_HYBRID, record_type="seizure",
                schema_fingerprint=fp, handling=summary, topic="mex.seizure.v1")
    header = verify(blob, trust=trust).header             # auditors: no private key
    record_bytes = open(blob, recipient=usa_atf, trust=trust).plaintext
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from exchange.crypto.batch import BatchSealer, PendingEnvelope
from exchange.crypto.dek import EpochPolicy
from exchange.crypto.header import DerivedFrom, EnvelopeHeader, KeyRef, ProducerRef
from exchange.crypto.keys import AgencyKey, KeyProvider, SuiteId, TrustResolver
from exchange.crypto.open import Opener
from exchange.crypto.results import OpenedEnvelope, VerifiedEnvelope
from exchange.crypto.seal import DEFAULT_TTL, Sealer
from exchange.policy import HandlingSummary

__all__ = [
    "AgencyKey",
    "BatchSealer",
    "DerivedFrom",
    "EnvelopeHeader",
    "EpochPolicy",
    "HandlingSummary",
    "KeyProvider",
    "KeyRef",
    "OpenedEnvelope",
    "Opener",
    "PendingEnvelope",
    "ProducerRef",
    "Sealer",
    "SuiteId",
    "TrustResolver",
    "VerifiedEnvelope",
    "open",
    "seal",
    "verify",
]


def seal(
    plaintext: bytes,
    *,
    sender: KeyProvider,
    trust: TrustResolver,
    recipients: Iterable[str],
    suite: SuiteId,
    record_type: str,
    schema_fingerprint: bytes,
    handling: HandlingSummary,
    topic: str,
    provenance: Iterable[DerivedFrom] = (),
    ttl: timedelta = DEFAULT_TTL,
    now: datetime | None = None,
) -> bytes:
    """Sign and encrypt one message to ``recipients`` (a fresh DEK, a batch of one).

    Args:
        plaintext: the record's Avro bytes (schemaless, written with ``schema_fingerprint``).
        sender: the sending agency's key provider.
        trust: resolves the recipients' current KEM keys.
        recipients: agency ids; each must be allowed by ``handling`` (exchange.policy).
        suite: cipher suite; every recipient needs a key of this suite.
        record_type: record type name (``seizure``...); the sender must be allowed to publish it.
        schema_fingerprint: SHA-256 of the writer schema's canonical form.
        handling: the record's handling summary (signed into the header).
        topic: the Kafka topic the envelope is meant for (bound into the header).
        provenance: parents of a derived record (``VerifiedEnvelope.as_parent()``).
        ttl: validity period, at most 366 days.
        now: injectable "now" (aware datetime); defaults to the current UTC time.

    Returns:
        The envelope bytes (``"XE" 0x01 || Avro``).

    Raises:
        PolicyError: the sender may not publish this type or address these recipients, or a
            recipient has no valid key for ``suite``.
        ValueError: an argument is out of range.
    """
    sealer = Sealer(sender, trust, suite=suite, epoch_policy=EpochPolicy(max_messages=1), ttl=ttl)
    return sealer.seal(
        plaintext, recipients=recipients, record_type=record_type,
        schema_fingerprint=schema_fingerprint, handling=handling, topic=topic,
        provenance=provenance, now=now,
    )  # fmt: skip


def verify(
    envelope: bytes, *, trust: TrustResolver, now: datetime | None = None
) -> VerifiedEnvelope:
    """Verify an envelope without any private key (auditors, routers).

    Checks bounds, format, the sender key's chain, revocation and validity at the signing time,
    the (batch) signature, that the sender may publish the record type, expiry, and that the
    addressed recipients are allowed by the signed handling.

    Returns:
        The verified header and digests.

    Raises:
        IntegrityError: for every failure; ``.reason`` tells which (never shown to peers).
    """
    return Opener(trust, root_cache_size=0, dek_cache_size=0).verify(envelope, now=now)


def open(
    envelope: bytes,
    *,
    recipient: KeyProvider,
    trust: TrustResolver,
    now: datetime | None = None,
) -> OpenedEnvelope:
    """Verify an envelope, check ``recipient`` is addressed and may read it, and decrypt it.

    Use an :class:`Opener` to keep verified roots and DEKs cached across messages.

    Returns:
        The verified header, the plaintext Avro bytes and the commitment salt.

    Raises:
        IntegrityError: as :func:`verify`, plus ``NOT_A_RECIPIENT``, ``HANDLING_VIOLATION``,
            ``BAD_KEY_WRAP``, ``DECRYPTION_FAILED`` and ``COMMITMENT_MISMATCH``.
    """
    opener = Opener(trust, recipient=recipient, root_cache_size=0, dek_cache_size=0)
    return opener.open(envelope, now=now)
