"""The audit trail: entries, a per-agency Merkle log, checkpoints, witnesses and receipts.

Every publish, delivery, quarantine, receipt, key and trust change becomes an
:class:`AuditEntry` (identifiers, digests and codes only: never plaintext, never personal
data) appended to the agency's :class:`AuditLog`, an append-only RFC 9162 Merkle log on disk.
The log signs C2SP tlog-checkpoints; the counterpart country's :class:`Witness` cosigns a
checkpoint only if it is consistent with the last one it cosigned; a :class:`WitnessPolicy`
says how many cosignatures make a checkpoint count. Recipients return signed
:class:`Receipt` notes. :func:`verify_log` checks a log directory offline and returns
:class:`Finding` objects. The normative spec is docs/audit.md.

Pipelines use :class:`AgencyAudit` (a locked log that checkpoints and publishes itself; pass
it to ``SecureProducer(audit=...)`` and ``SecureConsumer(audit=...)``); senders log receipts
with :func:`collect_receipts`; :func:`witness_logs` runs a witness over log directories;
:func:`audit_exchange` checks every log against the :class:`Evidence` read from the bus.
The Kafka side (audit and receipt topics, reading topics) is :mod:`exchange.audit_bus`.

Example (runnable with the in-memory key doubles)::

    >>> import tempfile, uuid
    >>> from datetime import UTC, datetime
    >>> from pathlib import Path
    >>> from exchange.audit import *
    >>> from exchange.crypto.testing import InMemoryAgency, InMemoryTrust
    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> fgr, atf = InMemoryAgency.generate("MEX-FGR"), InMemoryAgency.generate("USA-ATF")
    >>> trust = InMemoryTrust.of(fgr, atf)
    >>> home = Path(tempfile.mkdtemp())
    >>> log = AuditLog.open(home / "MEX-FGR", agency_id="MEX-FGR")
    >>> fp = bytes(32)
    >>> log.append(key_change_entry(log_agency="MEX-FGR", action=KeyAction.ENROLLED,
    ...                             agency_id="USA-ATF", key_id="classic-1", fingerprint=fp,
    ...                             time=now))
    0
    >>> signed = log.checkpoint(AgencyNoteSigner(fgr, at=now), now=now)
    >>> witness = Witness(home / "witness", signer=AgencyNoteSigner(atf, at=now),
    ...                   trust=trust, logs={"MEX-FGR"})
    >>> line = witness.add_checkpoint(signed.encode(), old_size=0, proof=[], now=now)
    >>> signed = log.add_cosignature(signed, line)
    >>> policy = WitnessPolicy(frozenset({"USA-ATF"}), quorum=1)
    >>> policy.satisfied(signed, trust)
    True
    >>> verify_log(log.directory, agency_id="MEX-FGR", trust=trust, policy=policy)
    []
    >>> log.close()
"""

from __future__ import annotations

from exchange.audit.agency import AgencyAudit, AuditPublisher
from exchange.audit.auditor import audit_exchange
from exchange.audit.builders import (
    delivery_entry,
    key_change_entry,
    publish_entry,
    quarantine_entry,
    receipt_entry,
)
from exchange.audit.checkpoint import (
    Checkpoint,
    SignedCheckpoint,
    WitnessPolicy,
    cosign,
    log_origin,
    sign_checkpoint,
)
from exchange.audit.codec import MAX_ENTRY_BYTES, decode_entry, encode_entry
from exchange.audit.collect import ReceiptTally, collect_receipts
from exchange.audit.entry import (
    AuditEntry,
    AuditReason,
    EntryKind,
    KafkaPosition,
    KeyAction,
    KeyEvent,
    Outcome,
)
from exchange.audit.errors import (
    AuditFormatError,
    AuditLogCorruptError,
    AuditStorageError,
    RefusalReason,
    WitnessRefusedError,
)
from exchange.audit.evidence import Evidence, ObservedMessage
from exchange.audit.log import AuditLog
from exchange.audit.note import AgencyNoteSigner, Note, NoteSignature, NoteSigner, key_name
from exchange.audit.receipt import (
    Receipt,
    ReceiptOutcome,
    receipt_digest,
    sign_receipt,
    verify_receipt,
)
from exchange.audit.tree import (
    consistency_proof,
    hash_leaf,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from exchange.audit.verifier import Finding, FindingKind, verify_log
from exchange.audit.witness import Witness
from exchange.audit.witnessing import WitnessOutcome, witness_logs

__all__ = [
    "MAX_ENTRY_BYTES",
    "AgencyAudit",
    "AgencyNoteSigner",
    "AuditEntry",
    "AuditFormatError",
    "AuditLog",
    "AuditLogCorruptError",
    "AuditPublisher",
    "AuditReason",
    "AuditStorageError",
    "Checkpoint",
    "EntryKind",
    "Evidence",
    "Finding",
    "FindingKind",
    "KafkaPosition",
    "KeyAction",
    "KeyEvent",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "ObservedMessage",
    "Outcome",
    "Receipt",
    "ReceiptOutcome",
    "ReceiptTally",
    "RefusalReason",
    "SignedCheckpoint",
    "Witness",
    "WitnessOutcome",
    "WitnessPolicy",
    "WitnessRefusedError",
    "audit_exchange",
    "collect_receipts",
    "consistency_proof",
    "cosign",
    "decode_entry",
    "delivery_entry",
    "encode_entry",
    "hash_leaf",
    "inclusion_proof",
    "key_change_entry",
    "key_name",
    "log_origin",
    "publish_entry",
    "quarantine_entry",
    "receipt_digest",
    "receipt_entry",
    "sign_checkpoint",
    "sign_receipt",
    "verify_consistency",
    "verify_inclusion",
    "verify_log",
    "verify_receipt",
    "witness_logs",
]
