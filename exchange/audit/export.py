"""Audit bundles: everything an auditor needs, in one directory, checked by a manifest.

Layout (docs/audit.md, "Export")::

    MANIFEST.sha256              "<sha256 hex>  <relative path>" per file, sorted
    meta.json                    {"format": "exchange-audit-bundle/v1", "topicPrefix": ...}
    logs/<agency>/               each agency's log directory (ORIGIN, entries.bin, checkpoints/)
    witness-policy.json          who must cosign which country's logs
    pki/trust/                   the public trust store (roots, CRLs, agency certificates)
    bus/envelopes.jsonl          every exchange-topic message: position, time, base64 bytes
    bus/watermarks.json          each partition's (low, high) when read
    bus/receipts.json            sender -> base64 receipt notes
    bus/checkpoints.json         agency -> published checkpoint notes

A bundle holds envelopes (ciphertext), digests and public keys only: no private key, no
plaintext. :func:`read_bundle` refuses nothing silently: every file that is missing, extra
or different from the manifest is returned as a finding.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from exchange.audit.auditor import Evidence, ObservedMessage
from exchange.audit.verifier import Finding, FindingKind

__all__ = ["BUNDLE_FORMAT", "Bundle", "read_bundle", "write_bundle"]

BUNDLE_FORMAT: Final = "exchange-audit-bundle/v1"
MANIFEST: Final = "MANIFEST.sha256"


@dataclass(frozen=True)
class Bundle:
    """A bundle read back: where its parts are and what the bus held."""

    root: Path
    topic_prefix: str
    logs: dict[str, Path]
    evidence: Evidence

    @property
    def policy_path(self) -> Path:
        return self.root / "witness-policy.json"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_bundle(
    out: Path,
    *,
    logs: dict[str, Path],
    evidence: Evidence,
    trust_dir: Path,
    policy_path: Path,
    topic_prefix: str,
) -> int:
    """Write a bundle to ``out`` (which must not exist or be empty).

    Returns:
        The number of files in the manifest.

    Raises:
        FileExistsError: ``out`` holds files already.
    """
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    out.mkdir(parents=True, exist_ok=True)
    for agency, directory in logs.items():
        shutil.copytree(directory, out / "logs" / agency, ignore=shutil.ignore_patterns(".lock"))
    shutil.copytree(trust_dir, out / "pki" / "trust")
    shutil.copy2(policy_path, out / "witness-policy.json")
    bus = out / "bus"
    bus.mkdir()
    with (bus / "envelopes.jsonl").open("w", encoding="utf-8") as f:
        for m in evidence.envelopes:
            row = {"topic": m.topic, "partition": m.partition, "offset": m.offset,
                   "timestampMs": m.timestamp_ms, "value": _b64(m.value)}  # fmt: skip
            f.write(json.dumps(row, sort_keys=True) + "\n")
    marks = [[t, p, lo, hi] for (t, p), (lo, hi) in sorted(evidence.watermarks.items())]
    _dump(bus / "watermarks.json", marks)
    _dump(bus / "receipts.json", {s: [_b64(n) for n in ns] for s, ns in evidence.receipts.items()})
    _dump(
        bus / "checkpoints.json",
        {a: [[w, _b64(n)] for w, n in ns] for a, ns in evidence.published_checkpoints.items()},
    )
    _dump(out / "meta.json", {"format": BUNDLE_FORMAT, "topicPrefix": topic_prefix})
    files = _files(out)
    lines = [f"{_sha256(out / rel)}  {rel}\n" for rel in files]
    (out / MANIFEST).write_text("".join(lines), encoding="utf-8")
    return len(files)


def read_bundle(root: Path) -> tuple[Bundle | None, list[Finding]]:
    """Check ``root`` against its manifest and load it.

    Returns:
        The bundle (None when it cannot be read at all) and the manifest findings.
    """
    findings: list[Finding] = []
    try:
        manifest = (root / MANIFEST).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None, [Finding(FindingKind.MISSING_FILE, str(root / MANIFEST), "no manifest")]
    listed: dict[str, str] = {}
    for line in manifest:
        digest, _, rel = line.partition("  ")
        listed[rel] = digest
    present = set(_files(root))
    for rel in sorted(set(listed) | present):
        if rel not in present:
            findings.append(Finding(FindingKind.MISSING_FILE, rel, "listed in the manifest"))
        elif rel not in listed:
            findings.append(Finding(FindingKind.BUNDLE_MISMATCH, rel, "not in the manifest"))
        elif _sha256(root / rel) != listed[rel]:
            findings.append(Finding(FindingKind.BUNDLE_MISMATCH, rel, "differs from the manifest"))
    try:
        meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
        bundle = Bundle(root, str(meta["topicPrefix"]), _logs(root), _evidence(root / "bus"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        # A hostile bundle: wrong JSON types (AttributeError: a list where a map belongs),
        # JSON nested deeper than the parser's recursion limit (RecursionError).
        findings.append(Finding(FindingKind.MISSING_FILE, str(root), f"not a bundle: {exc}"))
        return None, findings
    if meta.get("format") != BUNDLE_FORMAT:
        findings.append(Finding(FindingKind.MISSING_FILE, str(root), "unknown bundle format"))
        return None, findings
    return bundle, findings


def _logs(root: Path) -> dict[str, Path]:
    folder = root / "logs"
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_dir()} if folder.is_dir() else {}


def _evidence(bus: Path) -> Evidence:
    ev = Evidence()
    with (bus / "envelopes.jsonl").open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            ev.envelopes.append(
                ObservedMessage(
                    str(r["topic"]),
                    int(r["partition"]),
                    int(r["offset"]),
                    int(r["timestampMs"]),
                    base64.b64decode(r["value"], validate=True),
                )
            )
    for t, p, lo, hi in json.loads((bus / "watermarks.json").read_text(encoding="utf-8")):
        ev.watermarks[(str(t), int(p))] = (int(lo), int(hi))
    receipts = json.loads((bus / "receipts.json").read_text(encoding="utf-8"))
    ev.receipts = {
        str(s): [base64.b64decode(n, validate=True) for n in ns] for s, ns in receipts.items()
    }
    cps = json.loads((bus / "checkpoints.json").read_text(encoding="utf-8"))
    ev.published_checkpoints = {
        str(a): [(str(w), base64.b64decode(n, validate=True)) for w, n in ns]
        for a, ns in cps.items()
    }
    return ev


def _dump(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, sort_keys=True, indent=1) + "\n", encoding="utf-8")


def _files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != MANIFEST
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
