"""The end of an audited soak: receipts logged, checkpoints witnessed, the trail verified.

The workers leave two logs under the soak's audit root: the sender's (a ``publish`` entry per
envelope) and the recipient's (a ``delivery`` entry per stored envelope; each sent a signed
receipt to ``receipts.<sender>``). As ``exchange demo`` does when it finishes, the sender
then verifies and logs its receipts, and each agency witnesses the other's log (quorum 1: a
soak has one agency per country). :func:`~exchange.audit.auditor.audit_exchange`, the check
``exchange audit verify`` runs, then verifies both logs, every envelope of the run's topics,
completeness, handling and receipts. Unstable module: :mod:`exchange.cli.soak` is its caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from exchange.audit import Finding, Witness, WitnessPolicy
from exchange.audit.agency import AgencyAudit, locked_log
from exchange.audit.auditor import audit_exchange
from exchange.audit.note import AgencyNoteSigner
from exchange.audit.witnessing import AuditHome, witness_logs
from exchange.audit_bus import AuditTopicWriter, collect_receipts_from_bus, gather_evidence
from exchange.bench.workload import RECIPIENT, SENDER, Keys, peak_rss
from exchange.identifiers import agency_country
from exchange.routing import parse_exchange_topic

__all__ = ["AuditOutcome", "verify_soak_audit"]


@dataclass
class AuditOutcome:
    """What the audit at the end of a soak found."""

    receipts_logged: int
    receipts_refused: int
    cosignatures: int
    envelopes: int
    log_entries: dict[str, int]
    seconds: float
    #: Peak RSS of this process (the auditor holds the whole run in memory), MiB.
    peak_rss_mib: float = 0.0
    witness_refusals: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings and not self.witness_refusals and not self.receipts_refused

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok, "receipts_logged": self.receipts_logged,
            "receipts_refused": self.receipts_refused, "cosignatures": self.cosignatures,
            "envelopes": self.envelopes, "log_entries": self.log_entries,
            "seconds": round(self.seconds, 1), "peak_rss_mib": round(self.peak_rss_mib),
            "witness_refusals": self.witness_refusals,
            "findings": [f.to_dict() for f in self.findings[:20]],
            "findings_total": len(self.findings),
        }  # fmt: skip


def verify_soak_audit(
    root: Path, held: Keys, *, bootstrap: str, prefix: str, progress: Callable[[str], None]
) -> AuditOutcome:
    """Log receipts, witness both logs, then audit the run (module docstring).

    Raises:
        AuditStorageError: a log is still held by a worker, or the disk failed.
        BrokerError: a topic could not be read.
    """
    began = time.monotonic()
    home = AuditHome(root)
    providers = {SENDER: held.sender, RECIPIENT: held.recipient}
    progress("the sender verifies and logs its receipts")
    writer = AuditTopicWriter(bootstrap=bootstrap, agency_id=SENDER, topic_prefix=prefix)
    with AgencyAudit.open(home.log_dir(SENDER), held.sender, publisher=writer) as audit:
        tally = collect_receipts_from_bus(
            audit, bootstrap=bootstrap, trust=held.trust, topic_prefix=prefix
        )
    progress("each agency witnesses the other's log")
    now = datetime.now(UTC)
    outcomes = []
    for witness_id, followed in ((RECIPIENT, SENDER), (SENDER, RECIPIENT)):
        witness = Witness(
            home.witness_dir(witness_id), signer=AgencyNoteSigner(providers[witness_id], at=now),
            trust=held.trust, logs=[followed],
        )  # fmt: skip
        outcomes += witness_logs(witness, {followed: home.log_dir(followed)}, now=now)
    policies = {
        agency_country(followed): WitnessPolicy(frozenset({witness_id}), 1)
        for witness_id, followed in ((RECIPIENT, SENDER), (SENDER, RECIPIENT))
    }
    evidence = gather_evidence(bootstrap, topic_prefix=prefix, progress=progress)
    progress(f"auditing {len(evidence.envelopes):,} envelopes and both logs")
    logs = home.logs()
    findings = audit_exchange(
        logs, evidence, trust=held.trust, policies=policies,
        is_exchange_topic=lambda t: parse_exchange_topic(t, prefix=prefix) is not None,
    )  # fmt: skip
    return AuditOutcome(
        receipts_logged=tally.logged, receipts_refused=tally.refused,
        cosignatures=sum(1 for o in outcomes if o.refused is None),
        envelopes=len(evidence.envelopes),
        log_entries={agency: _entries(directory) for agency, directory in logs.items()},
        seconds=time.monotonic() - began, peak_rss_mib=peak_rss() / 2**20,
        witness_refusals=[f"{o.witness} on {o.log_agency}: {o.refused}" for o in outcomes
                          if o.refused],
        findings=findings,
    )  # fmt: skip


def _entries(directory: Path) -> int:
    with locked_log(directory, directory.name) as log:
        return log.size
