"""What the auditor works on: messages read from the bus, and each log loaded once.

Unstable module of :mod:`exchange.audit.auditor`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from pathlib import Path

from exchange.audit.checkpoint import SignedCheckpoint, WitnessPolicy
from exchange.audit.codec import decode_entry
from exchange.audit.entry import AuditEntry
from exchange.audit.errors import AuditFormatError, AuditLogCorruptError, AuditStorageError
from exchange.audit.log import CHECKPOINT_DIR, ENTRIES_FILE
from exchange.audit.storage import read_note_file, scan_frames
from exchange.audit.tree import hash_leaf, root_of
from exchange.audit.verifier import Finding, FindingKind
from exchange.crypto.keys import TrustResolver

__all__ = ["Evidence", "LoadedLog", "ObservedMessage", "load_log", "published_forks"]


@dataclass(frozen=True)
class ObservedMessage:
    """One message read from an exchange topic (bytes nobody verified yet)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    value: bytes

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass
class Evidence:
    """What the auditor read from the bus (or an export)."""

    #: every message of every exchange topic
    envelopes: list[ObservedMessage] = field(default_factory=list)
    #: (topic, partition) -> (low, high) watermarks when read
    watermarks: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    #: sender -> receipt notes found on ``receipts.<sender>``
    receipts: dict[str, list[bytes]] = field(default_factory=dict)
    #: log agency -> (where, checkpoint note) published on ``audit.<agency>``
    published_checkpoints: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)


@dataclass
class LoadedLog:
    """One log's decoded entries (None: undecodable), leaf hashes and witnessed size."""

    agency: str
    entries: list[AuditEntry | None]
    witnessed: int  # size of the largest checkpoint that matches and meets the quorum
    leaves: list[bytes]


def load_log(
    agency: str, directory: Path, trust: TrustResolver, policy: WitnessPolicy | None
) -> LoadedLog:
    """Decode a log once; its witnessed size is the largest checkpoint that matches the
    entries and meets ``policy`` (0 without a policy). Damage is left to ``verify_log``."""
    try:
        scan = scan_frames((directory / ENTRIES_FILE).read_bytes())
    except (OSError, AuditLogCorruptError):
        return LoadedLog(agency, [], 0, [])  # verify_log reports it
    entries: list[AuditEntry | None] = []
    for data in scan.entries:
        try:
            entries.append(decode_entry(data))
        except AuditFormatError:
            entries.append(None)
    leaves = [hash_leaf(d) for d in scan.entries]
    witnessed = 0
    for path in sorted((directory / CHECKPOINT_DIR).glob("*.note")):
        try:
            signed = SignedCheckpoint.parse(read_note_file(path))
        except (AuditFormatError, AuditStorageError):
            continue  # verify_log reports it
        cp = signed.checkpoint
        if cp.agency_id != agency or cp.size > len(leaves) or policy is None:
            continue
        same = hmac.compare_digest(root_of(leaves[: cp.size]), cp.root)
        if same and policy.satisfied(signed, trust):
            witnessed = max(witnessed, cp.size)
    return LoadedLog(agency, entries, witnessed, leaves)


def published_forks(
    log: LoadedLog, notes: list[tuple[str, bytes]], trust: TrustResolver
) -> list[Finding]:
    """Checkpoints published on the audit topic that the log's entries do not hash to."""
    out: list[Finding] = []
    for where, data in notes:
        try:
            signed = SignedCheckpoint.parse(data)
        except AuditFormatError as exc:
            out.append(Finding(FindingKind.BAD_CHECKPOINT, where, str(exc)))
            continue
        cp = signed.checkpoint
        if cp.agency_id != log.agency or not signed.verify_log_signature(trust):
            out.append(Finding(FindingKind.BAD_LOG_SIGNATURE, where, f"not signed by {log.agency}"))
            continue
        if cp.size > len(log.leaves):
            out.append(
                Finding(
                    FindingKind.FORK,
                    where,
                    f"{log.agency} published a tree of size {cp.size}, but its log holds "
                    f"{len(log.leaves)} entries (entries deleted, or another history)",
                )
            )
        elif not hmac.compare_digest(root_of(log.leaves[: cp.size]), cp.root):
            out.append(
                Finding(
                    FindingKind.FORK,
                    where,
                    f"{log.agency} published size {cp.size} with root "
                    f"{cp.root.hex()[:16]}..., but its log's first {cp.size} entries hash "
                    "to another root (split view or rewrite)",
                )
            )
    return out
