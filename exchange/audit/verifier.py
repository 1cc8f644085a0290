"""The offline verifier core: check a log directory and report every problem as a Finding.

Given a log directory (possibly copied from an export) and a trust store, with no private key
and without opening the log for writing (docs/audit.md, "Verification"):

1. the entries file starts with its magic and every frame is intact (a torn tail is a finding);
2. every entry decodes canonically and belongs to this log's agency;
3. every checkpoint parses, names this log, is signed by the log agency's key, and has the
   witness quorum of the :class:`~exchange.audit.checkpoint.WitnessPolicy`;
4. the tree recomputed from the entries has each checkpoint's root at its size — entries
   altered, deleted, reordered or inserted change the root; the finding names the entry range
   between the last matching checkpoint and the first failing one;
5. no two checkpoints (stored, or seen elsewhere and passed as ``extra_checkpoints``) have the
   same size with different roots (a fork), and every pair is consistent;
6. entries after the last checkpoint are reported (not yet committed to by a signature).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from exchange.audit.checkpoint import SignedCheckpoint, WitnessPolicy, log_origin
from exchange.audit.codec import decode_entry
from exchange.audit.errors import AuditFormatError, AuditLogCorruptError, AuditStorageError
from exchange.audit.log import CHECKPOINT_DIR, ENTRIES_FILE
from exchange.audit.storage import read_note_file, scan_frames
from exchange.audit.tree import CompactRange, hash_leaf
from exchange.crypto.keys import TrustResolver

__all__ = ["Finding", "FindingKind", "verify_log"]


class FindingKind(StrEnum):
    """What is wrong. Stable strings: the CLI prints them and ``--json`` carries them."""

    MISSING_FILE = "missing_file"
    CORRUPT_ENTRIES = "corrupt_entries"
    TORN_TAIL = "torn_tail"
    BAD_ENTRY = "bad_entry"
    WRONG_LOG = "wrong_log"
    BAD_CHECKPOINT = "bad_checkpoint"
    BAD_LOG_SIGNATURE = "bad_log_signature"
    QUORUM_NOT_MET = "quorum_not_met"
    ROOT_MISMATCH = "root_mismatch"
    CHECKPOINT_BEYOND_LOG = "checkpoint_beyond_log"
    FORK = "fork"
    UNCHECKPOINTED_ENTRIES = "uncheckpointed_entries"
    # Across logs and the bus (exchange.audit.auditor, docs/audit.md "Auditing the exchange").
    NO_WITNESS_POLICY = "no_witness_policy"
    BAD_ENVELOPE = "bad_envelope"
    NOT_IN_LOG = "not_in_log"
    LOG_MISMATCH = "log_mismatch"
    NOT_WITNESSED = "not_witnessed"
    UNACCOUNTED_OFFSET = "unaccounted_offset"
    MISSING_ENVELOPE = "missing_envelope"
    HANDLING_VIOLATION = "handling_violation"
    RE_RELEASE = "re_release"
    UNKNOWN_PARENT = "unknown_parent"
    DELIVERY_WITHOUT_PUBLISH = "delivery_without_publish"
    BAD_RECEIPT = "bad_receipt"
    MISSING_RECEIPT = "missing_receipt"
    RECEIPT_NOT_LOGGED = "receipt_not_logged"
    BUNDLE_MISMATCH = "bundle_mismatch"


@dataclass(frozen=True)
class Finding:
    """One problem: its kind, where it is (file and entry or size), and a human sentence."""

    kind: FindingKind
    where: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind.value, "where": self.where, "message": self.message}


def verify_log(
    directory: Path,
    *,
    agency_id: str,
    trust: TrustResolver,
    policy: WitnessPolicy,
    extra_checkpoints: Iterable[bytes] = (),
) -> list[Finding]:
    """Verify one agency's log directory offline.

    Args:
        directory: the log directory (``ORIGIN``, ``entries.bin``, ``checkpoints/``).
        agency_id: whose log it must be.
        trust: the trust store (log and witness keys).
        policy: the witness quorum every checkpoint needs.
        extra_checkpoints: signed checkpoints seen elsewhere (audit topic, witness state,
            another auditor); they must agree with this log too.

    Returns:
        Every finding, in the order found; an empty list means the log verifies.
    """
    findings: list[Finding] = []
    entries_path = directory / ENTRIES_FILE
    if not entries_path.is_file():
        return [Finding(FindingKind.MISSING_FILE, str(entries_path), "no entries file")]
    try:
        scan = scan_frames(entries_path.read_bytes())
    except AuditLogCorruptError as exc:
        return [Finding(FindingKind.CORRUPT_ENTRIES, str(entries_path), str(exc))]
    if scan.tail:
        kind = FindingKind.CORRUPT_ENTRIES if scan.damaged_middle else FindingKind.TORN_TAIL
        findings.append(
            Finding(
                kind,
                f"{entries_path}@{scan.good_end}",
                f"{scan.tail} bytes after entry {len(scan.entries)} are not an intact frame",
            )
        )
    for i, data in enumerate(scan.entries):
        try:
            entry = decode_entry(data)
        except AuditFormatError as exc:
            findings.append(Finding(FindingKind.BAD_ENTRY, f"entry {i}", str(exc)))
            continue
        if entry.log_agency != agency_id:
            findings.append(
                Finding(
                    FindingKind.WRONG_LOG,
                    f"entry {i}",
                    f"entry of {entry.log_agency}'s log in {agency_id}'s",
                )
            )
    checkpoints = _load_checkpoints(
        directory,
        agency_id=agency_id,
        trust=trust,
        policy=policy,
        extra=extra_checkpoints,
        findings=findings,
    )
    _check_roots(scan.entries, checkpoints, findings)
    covered = max((c.checkpoint.size for _, c in checkpoints), default=0)
    if len(scan.entries) > covered:
        findings.append(
            Finding(
                FindingKind.UNCHECKPOINTED_ENTRIES,
                f"entries {covered}..{len(scan.entries) - 1}",
                "no signed checkpoint commits to these entries yet",
            )
        )
    return findings


def _load_checkpoints(
    directory: Path,
    *,
    agency_id: str,
    trust: TrustResolver,
    policy: WitnessPolicy,
    extra: Iterable[bytes],
    findings: list[Finding],
) -> list[tuple[str, SignedCheckpoint]]:
    folder = directory / CHECKPOINT_DIR
    sources: list[tuple[str, bytes]] = []
    for p in sorted(folder.glob("*.note")):
        try:
            sources.append((str(p), read_note_file(p)))  # bounded: the export may be hostile
        except AuditStorageError as exc:
            findings.append(Finding(FindingKind.BAD_CHECKPOINT, str(p), str(exc)))
    sources += [(f"extra checkpoint {i}", data) for i, data in enumerate(extra)]
    out: list[tuple[str, SignedCheckpoint]] = []
    for where, data in sources:
        try:
            signed = SignedCheckpoint.parse(data)
        except AuditFormatError as exc:
            findings.append(Finding(FindingKind.BAD_CHECKPOINT, where, str(exc)))
            continue
        cp = signed.checkpoint
        if cp.origin != log_origin(agency_id):
            findings.append(
                Finding(
                    FindingKind.BAD_CHECKPOINT,
                    where,
                    f"origin {cp.origin} is not {agency_id}'s log",
                )
            )
            continue
        if not signed.verify_log_signature(trust):
            findings.append(
                Finding(
                    FindingKind.BAD_LOG_SIGNATURE,
                    where,
                    f"no valid signature by {agency_id} on size {cp.size}",
                )
            )
            continue
        counted = policy.counted(signed, trust)
        if len(counted) < policy.quorum:
            findings.append(
                Finding(
                    FindingKind.QUORUM_NOT_MET,
                    where,
                    f"size {cp.size} cosigned by {sorted(counted) or 'nobody'}, "
                    f"needs {policy.quorum} of {sorted(policy.witnesses)}",
                )
            )
        out.append((where, signed))
    by_size: dict[int, tuple[str, bytes]] = {}
    for where, signed in out:
        cp = signed.checkpoint
        seen = by_size.setdefault(cp.size, (where, cp.root))
        if seen[1] != cp.root:
            findings.append(
                Finding(
                    FindingKind.FORK,
                    where,
                    f"size {cp.size} has root {cp.root.hex()[:16]}..., but "
                    f"{seen[0]} has {seen[1].hex()[:16]}... (split view)",
                )
            )
    return sorted(out, key=lambda x: x[1].checkpoint.size)


def _check_roots(
    entries: list[bytes], checkpoints: list[tuple[str, SignedCheckpoint]], findings: list[Finding]
) -> None:
    # Stream the tree once; compare the root at each checkpoint size (RFC 9162 MTH of the
    # prefix). All checkpoints that match are prefixes of one sequence, hence consistent.
    tree = CompactRange()
    last_good = 0
    pending = iter(checkpoints)
    item = next(pending, None)
    for size in range(len(entries) + 1):
        while item is not None and item[1].checkpoint.size == size:
            where, signed = item
            if hmac.compare_digest(tree.root(), signed.checkpoint.root):
                last_good = max(last_good, size)
            else:
                findings.append(
                    Finding(
                        FindingKind.ROOT_MISMATCH,
                        where,
                        f"entries do not hash to the signed root of size {size}: "
                        f"an entry in {last_good}..{size - 1} was altered, "
                        "deleted, reordered or inserted",
                    )
                )
            item = next(pending, None)
        if size < len(entries):
            tree.append(hash_leaf(entries[size]))
    while item is not None:
        where, signed = item
        findings.append(
            Finding(
                FindingKind.CHECKPOINT_BEYOND_LOG,
                where,
                f"signed size {signed.checkpoint.size} but only {len(entries)} "
                "entries are intact: entries were deleted",
            )
        )
        item = next(pending, None)
