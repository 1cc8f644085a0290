"""The audit trail: entries, a per-agency Merkle log, checkpoints, witnesses and receipts.

Every publish, delivery, quarantine, receipt, key and trust change becomes an
:class:`AuditEntry` (identifiers, digests and codes only: never plaintext, never personal
data) appended to the agency's :class:`AuditLog`, an append-only RFC 9162 Merkle log on disk.
The log signs C2SP tlog-checkpoints; the counterpart country's :class:`Witness` cosigns a
checkpoint only if it is consistent with the last one it cosigned; a :class:`WitnessPolicy`
says how many cosignatures make a checkpoint count. Recipients return signed
:class:`Receipt` notes. :func:`verify_log` checks a log directory offline and returns
:class:`Finding` objects. The normative spec is docs/audit.md.

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

__all__ = [
    "MAX_ENTRY_BYTES",
    "AgencyNoteSigner",
    "AuditEntry",
    "AuditFormatError",
    "AuditLog",
    "AuditLogCorruptError",
    "AuditReason",
    "AuditStorageError",
    "Checkpoint",
    "EntryKind",
    "Finding",
    "FindingKind",
    "KafkaPosition",
    "KeyAction",
    "KeyEvent",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "Outcome",
    "Receipt",
    "ReceiptOutcome",
    "RefusalReason",
    "SignedCheckpoint",
    "Witness",
    "WitnessPolicy",
    "WitnessRefusedError",
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
]
