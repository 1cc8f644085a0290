"""The public surface of exchange.audit is pinned (STYLE.md §1) and its example runs."""

from __future__ import annotations

import ast
import doctest
from pathlib import Path

import exchange.audit

EXPECTED = {
    "MAX_ENTRY_BYTES", "AgencyNoteSigner", "AuditEntry", "AuditFormatError", "AuditLog",
    "AuditLogCorruptError", "AuditReason", "AuditStorageError", "Checkpoint", "EntryKind",
    "Finding", "FindingKind", "KafkaPosition", "KeyAction", "KeyEvent", "Note", "NoteSignature",
    "NoteSigner", "Outcome", "Receipt", "ReceiptOutcome", "RefusalReason", "SignedCheckpoint",
    "Witness", "WitnessPolicy", "WitnessRefusedError", "consistency_proof", "cosign",
    "decode_entry", "delivery_entry", "encode_entry", "hash_leaf", "inclusion_proof",
    "key_change_entry", "key_name", "log_origin", "publish_entry", "quarantine_entry",
    "receipt_digest", "receipt_entry", "sign_checkpoint", "sign_receipt", "verify_consistency",
    "verify_inclusion", "verify_log", "verify_receipt",
    # phase 2: the pipeline, receipts, witnesses over directories, the exchange auditor
    "AgencyAudit", "AuditPublisher", "Evidence", "ObservedMessage", "ReceiptTally",
    "WitnessOutcome", "audit_exchange", "collect_receipts", "witness_logs",
}  # fmt: skip


def test_exported_names_are_pinned() -> None:
    assert set(exchange.audit.__all__) == EXPECTED
    assert all(hasattr(exchange.audit, name) for name in EXPECTED)


def test_package_docstring_example_runs() -> None:
    result = doctest.testmod(exchange.audit, raise_on_error=False)
    assert result.attempted >= 10
    assert result.failed == 0


def test_audit_does_not_depend_on_kafka_the_cli_or_the_edges() -> None:
    # docs/architecture.md: the audit log is a library producers, consumers and the auditor use.
    banned = ("confluent_kafka", "exchange.cli", "exchange.producers", "exchange.consumers",
              "exchange.broker", "exchange.crypto.hazmat")  # fmt: skip
    package = Path(exchange.audit.__file__).parent
    imported: set[str] = set()
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
    assert "exchange.crypto.merkle" in imported  # RFC 9162 hashing is reused, not duplicated
    assert not [m for m in imported if m.startswith(banned)]
