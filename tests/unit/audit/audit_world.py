"""Shared test world for the audit tests: two countries' agencies, a trust store, entries.

Keys are in-memory doubles (exchange.crypto.testing) derived from fixed seeds, so every test
is hermetic and reproducible; only ``classic`` generations are made (the audit signing key).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from exchange.audit import (
    AgencyNoteSigner,
    AuditEntry,
    AuditLog,
    EntryKind,
    KafkaPosition,
    SignedCheckpoint,
    Witness,
    WitnessPolicy,
)
from exchange.crypto import KeyRef, SuiteId
from exchange.crypto.testing import InMemoryAgency, InMemoryTrust
from exchange.policy import HandlingSummary

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LOG_AGENCY = "MEX-FGR"


def agency(agency_id: str) -> InMemoryAgency:
    return InMemoryAgency.generate(agency_id, (SuiteId.CLASSIC,), seed=b"audit-tests")


def sample_entry(i: int, *, log_agency: str = LOG_AGENCY) -> AuditEntry:
    """A publish entry whose ids and digests are derived from ``i``."""
    d = hashlib.sha256(i.to_bytes(8, "big")).digest()
    return AuditEntry(
        kind=EntryKind.PUBLISH,
        time=NOW + timedelta(seconds=i),
        log_agency=log_agency,
        message_id=uuid.UUID(bytes=d[:16], version=4),
        record_type="seizure",
        signing_digest=d,
        header_digest=hashlib.sha256(d).digest(),
        commitment=hashlib.sha256(d + d).digest(),
        position=KafkaPosition("mex-fgr.seizure", 0, i),
        handling=HandlingSummary(tlp="AMBER", releasable_to=("MEX", "USA"), originator=log_agency),
        sender=KeyRef(log_agency, "classic-1"),
        recipients=(KeyRef("USA-ATF", "classic-1"), KeyRef("USA-CBP", "classic-1")),
    )


@dataclass
class AuditWorld:
    """A MEX-FGR log witnessed by USA-ATF (and USA-CBP for quorum tests)."""

    home: Path
    fgr: InMemoryAgency
    atf: InMemoryAgency
    cbp: InMemoryAgency
    trust: InMemoryTrust

    @classmethod
    def create(cls, home: Path) -> AuditWorld:
        fgr, atf, cbp = agency("MEX-FGR"), agency("USA-ATF"), agency("USA-CBP")
        return cls(home, fgr, atf, cbp, InMemoryTrust.of(fgr, atf, cbp))

    @property
    def log_dir(self) -> Path:
        return self.home / "log" / LOG_AGENCY

    def open_log(self) -> AuditLog:
        return AuditLog.open(self.log_dir, agency_id=LOG_AGENCY)

    def log_signer(self, at: datetime = NOW) -> AgencyNoteSigner:
        return AgencyNoteSigner(self.fgr, at=at)

    def witness(self, who: InMemoryAgency | None = None) -> Witness:
        w = who or self.atf
        return Witness(
            self.home / "witness" / w.agency_id,
            signer=AgencyNoteSigner(w, at=NOW),
            trust=self.trust,
            logs={LOG_AGENCY},
        )

    def policy(self, quorum: int = 1) -> WitnessPolicy:
        return WitnessPolicy(frozenset({"USA-ATF", "USA-CBP"}), quorum=quorum)

    def grow(
        self, log: AuditLog, count: int, *, witnesses: tuple[Witness, ...] = ()
    ) -> SignedCheckpoint:
        """Append ``count`` entries, checkpoint, and have ``witnesses`` cosign."""
        start = log.size
        log.append_many(sample_entry(start + i) for i in range(count))
        signed = log.checkpoint(self.log_signer(), now=NOW + timedelta(seconds=log.size))
        for w in witnesses:
            known = w.state(LOG_AGENCY)
            old = 0 if known is None else known.size
            line = w.add_checkpoint(
                signed.encode(), old_size=old, proof=log.consistency_proof(old), now=NOW
            )
            signed = log.add_cosignature(signed, line)
        return signed
