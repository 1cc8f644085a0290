"""The exchange auditor: every log, every envelope on the bus, every receipt, one verdict.

:func:`audit_exchange` checks, with the trust store only (docs/audit.md, "Auditing the
exchange"):

1. each agency log on its own (:func:`~exchange.audit.verify_log`) under its country's
   witness policy, and every checkpoint the log published on ``audit.<agency>`` against the
   log's entries (a different root at the same size, or a size the log does not have, is a
   fork);
2. every message on the exchange topics verifies as an envelope (``bad_envelope``;
   ``handling_violation`` when its recipients are outside its releasability);
3. every verified envelope has the ``publish`` entry in its sender's log with the same
   message id, signing digest and position (``not_in_log``, ``log_mismatch``), under a
   witnessed checkpoint (``not_witnessed``: its inclusion proof would not reach a checkpoint
   with the quorum);
4. completeness: every offset between each partition's watermarks was read
   (``unaccounted_offset``) and every logged position still holds its envelope
   (``missing_envelope``);
5. handling in the logs: each publish entry's recipients are allowed by its handling, and a
   derived record keeps its parents' restrictions and never leaves an originator-controlled
   parent's originator (``re_release``, ``unknown_parent``);
6. receipts: every delivery a recipient logged has a valid receipt from it on
   ``receipts.<sender>`` (``missing_receipt``, ``bad_receipt``) that the sender logged
   (``receipt_not_logged``), and matches a publish entry (``delivery_without_publish``).
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from exchange.audit.checkpoint import WitnessPolicy
from exchange.audit.entry import AuditEntry, EntryKind, KafkaPosition, Outcome
from exchange.audit.errors import AuditFormatError
from exchange.audit.evidence import (
    Evidence,
    LoadedLog,
    ObservedMessage,
    load_log,
    published_forks,
)
from exchange.audit.note import Note
from exchange.audit.receipt import Receipt, receipt_digest, verify_receipt
from exchange.audit.verifier import Finding, FindingKind, verify_log
from exchange.crypto import Opener, VerifiedEnvelope
from exchange.crypto.keys import TrustResolver
from exchange.errors import IntegrityError, IntegrityReason, PolicyError
from exchange.policy import HandlingSummary, check_addressing, check_derivation

__all__ = ["Evidence", "ObservedMessage", "audit_exchange"]

#: Caveats that keep a record with its originator (exchange.policy rule 5).
ORIGINATOR_ONLY = frozenset({"ORIGINATOR_CONTROLLED", "NO_THIRD_PARTY_DISSEMINATION", "UNKNOWN"})

Progress = Callable[[int], None]


def audit_exchange(
    logs: Mapping[str, Path],
    evidence: Evidence,
    *,
    trust: TrustResolver,
    policies: Mapping[str, WitnessPolicy],
    is_exchange_topic: Callable[[str], bool],
    progress: Progress | None = None,
) -> list[Finding]:
    """Audit the whole exchange offline.

    Args:
        logs: agency id -> log directory.
        evidence: what was read from the exchange, receipt and audit topics.
        trust: the trust store (public part).
        policies: country code -> witness policy of that country's logs.
        is_exchange_topic: whether a logged position's topic belongs to the audited exchange
            (deployment prefix), so its envelope must be on the bus.
        progress: called with the number of envelopes checked since the last call.

    Returns:
        Every finding; empty when everything holds.
    """
    findings: list[Finding] = []
    loaded: dict[str, LoadedLog] = {}
    for agency, directory in sorted(logs.items()):
        policy = policies.get(agency.split("-", 1)[0])
        if policy is None:
            findings.append(
                Finding(FindingKind.NO_WITNESS_POLICY, agency, "no witness policy for its country")
            )
        else:
            found = verify_log(directory, agency_id=agency, trust=trust, policy=policy)
            findings += [Finding(f.kind, f"{agency} log: {f.where}", f.message) for f in found]
        loaded[agency] = load_log(agency, directory, trust, policy)
        notes = evidence.published_checkpoints.get(agency, [])
        findings += published_forks(loaded[agency], notes, trust)
    for agency in sorted(set(evidence.published_checkpoints) - set(logs)):
        findings.append(
            Finding(FindingKind.MISSING_FILE, agency, "published checkpoints but no log was given")
        )
    checker = _Checker(loaded, trust, findings)
    verified = checker.envelopes(evidence, progress)
    checker.completeness(evidence, is_exchange_topic)
    checker.handling(verified)
    checker.receipts(evidence)
    return findings


class _Checker:
    def __init__(self, logs: dict[str, LoadedLog], trust: TrustResolver, findings: list[Finding]):
        self.logs = logs
        self.trust = trust
        self.findings = findings
        # position -> (agency, index, entry) of every successful publish entry
        self.published: dict[KafkaPosition, tuple[str, int, AuditEntry]] = {}
        self.by_message: dict[uuid.UUID, AuditEntry] = {}
        for agency, log in logs.items():
            for i, e in enumerate(log.entries):
                if e is None or e.kind is not EntryKind.PUBLISH:
                    continue
                if e.message_id is not None:
                    self.by_message[e.message_id] = e
                if e.outcome is Outcome.OK and e.position is not None:
                    self.published[e.position] = (agency, i, e)

    def add(self, kind: FindingKind, where: str, message: str) -> None:
        self.findings.append(Finding(kind, where, message))

    def envelopes(
        self, evidence: Evidence, progress: Progress | None
    ) -> list[tuple[ObservedMessage, VerifiedEnvelope]]:
        opener = Opener(self.trust, root_cache_size=4096, dek_cache_size=0)
        out: list[tuple[ObservedMessage, VerifiedEnvelope]] = []
        for n, m in enumerate(evidence.envelopes, start=1):
            if progress is not None and n % 64 == 0:
                progress(64)
            # Valid when it was on the bus: the time Kafka recorded for it.
            at = datetime.fromtimestamp(max(m.timestamp_ms, 0) / 1000, UTC)
            try:
                v = opener.verify(m.value, now=at)
            except IntegrityError as exc:
                if exc.reason is IntegrityReason.HANDLING_VIOLATION:
                    self.add(
                        FindingKind.HANDLING_VIOLATION, m.where,
                        "signed envelope addressed to an agency its handling does not release "
                        "it to",
                    )  # fmt: skip
                else:
                    self.add(
                        FindingKind.BAD_ENVELOPE, m.where,
                        f"not a valid envelope ({exc.reason.value})",
                    )  # fmt: skip
                continue
            out.append((m, v))
            self._included(m, v)
        if progress is not None:
            progress(len(evidence.envelopes) % 64)
        return out

    def _included(self, m: ObservedMessage, v: VerifiedEnvelope) -> None:
        sender = v.header.sender.agency_id
        found = self.published.get(KafkaPosition(m.topic, m.partition, m.offset))
        if found is None or found[0] != sender:
            self.add(
                FindingKind.NOT_IN_LOG, m.where,
                f"message {v.message_id} signed by {sender} has no publish entry at this "
                f"position in {sender}'s log",
            )  # fmt: skip
            return
        _, index, e = found
        digest_ok = e.signing_digest is not None and hmac.compare_digest(
            e.signing_digest, v.signing_digest
        )
        if e.message_id != v.message_id or not digest_ok:
            self.add(
                FindingKind.LOG_MISMATCH, m.where,
                f"{sender} log entry {index} names another message or digest than the envelope",
            )  # fmt: skip
        elif index >= self.logs[sender].witnessed:
            self.add(
                FindingKind.NOT_WITNESSED, m.where,
                f"{sender} log entry {index} is not under a checkpoint with the witness quorum "
                f"(witnessed size {self.logs[sender].witnessed})",
            )  # fmt: skip

    def completeness(self, evidence: Evidence, is_exchange_topic: Callable[[str], bool]) -> None:
        seen: dict[tuple[str, int], set[int]] = {}
        for m in evidence.envelopes:
            seen.setdefault((m.topic, m.partition), set()).add(m.offset)
        for (topic, p), (low, high) in sorted(evidence.watermarks.items()):
            offsets = seen.get((topic, p), set())
            missing = [o for o in range(low, high) if o not in offsets]
            if missing:
                self.add(
                    FindingKind.UNACCOUNTED_OFFSET, f"{topic}[{p}]@{missing[0]}",
                    f"{len(missing)} offset(s) between the watermarks were not read",
                )  # fmt: skip
        for pos, (agency, index, _) in sorted(self.published.items(), key=lambda x: x[1][:2]):
            if not is_exchange_topic(pos.topic):
                continue
            low, _ = evidence.watermarks.get((pos.topic, pos.partition), (0, 0))
            if pos.offset >= low and pos.offset not in seen.get((pos.topic, pos.partition), set()):
                self.add(
                    FindingKind.MISSING_ENVELOPE, f"{pos.topic}[{pos.partition}]@{pos.offset}",
                    f"{agency} log entry {index} says an envelope was published here; "
                    "the topic does not hold it",
                )  # fmt: skip

    def handling(self, verified: list[tuple[ObservedMessage, VerifiedEnvelope]]) -> None:
        known: dict[uuid.UUID, HandlingSummary] = {
            mid: e.handling for mid, e in self.by_message.items() if e.handling is not None
        }
        known.update({v.message_id: v.header.handling for _, v in verified})
        for agency, log in sorted(self.logs.items()):
            for i, e in enumerate(log.entries):
                if e is None or e.kind is not EntryKind.PUBLISH or e.handling is None:
                    continue
                if e.sender is None:
                    continue
                try:
                    check_addressing(
                        e.handling, sender=e.sender.agency_id,
                        recipients=[r.agency_id for r in e.recipients],
                    )  # fmt: skip
                except PolicyError as exc:
                    self.add(FindingKind.HANDLING_VIOLATION, f"{agency} log entry {i}", str(exc))
        for m, v in verified:
            child = v.header.handling
            for parent in v.header.provenance:
                ph = known.get(parent.message_id)
                if ph is None:
                    self.add(
                        FindingKind.UNKNOWN_PARENT, m.where,
                        f"derived from {parent.message_id}, which no log or topic holds",
                    )  # fmt: skip
                    continue
                problem = None
                try:
                    check_derivation(ph, child)
                except PolicyError as exc:
                    problem = str(exc)
                if ORIGINATOR_ONLY & set(ph.caveats) and child.originator != ph.originator:
                    problem = f"re-released without {ph.originator}'s consent (originator-only)"
                if problem is not None:
                    self.add(
                        FindingKind.RE_RELEASE, m.where, f"{problem}: parent {parent.message_id}"
                    )

    def receipts(self, evidence: Evidence) -> None:
        valid: dict[tuple[uuid.UUID, str], bytes] = {}
        for sender, notes in sorted(evidence.receipts.items()):
            for n, data in enumerate(notes):
                where = f"receipts.{sender} #{n}"
                try:
                    claimed = Receipt.parse(Note.parse(data).text)
                except AuditFormatError as exc:
                    self.add(FindingKind.BAD_RECEIPT, where, str(exc))
                    continue
                e = self.by_message.get(claimed.message_id)
                if e is None or e.signing_digest is None:
                    self.add(FindingKind.BAD_RECEIPT, where, "receipt for an unlogged message")
                    continue
                try:
                    r = verify_receipt(
                        data, trust=self.trust, message_id=claimed.message_id,
                        signing_digest=e.signing_digest, sender=sender,
                    )  # fmt: skip
                except IntegrityError as exc:
                    self.add(FindingKind.BAD_RECEIPT, where, f"invalid ({exc.reason.value})")
                    continue
                valid[(r.message_id, r.recipient)] = receipt_digest(data)
        logged = {
            agency: {e.receipt_digest for e in log.entries if e is not None and e.receipt_digest}
            for agency, log in self.logs.items()
        }
        for agency, log in sorted(self.logs.items()):
            for i, e in enumerate(log.entries):
                if e is None or e.kind is not EntryKind.DELIVERY:
                    continue
                self._delivery(agency, i, e, valid, logged)

    def _delivery(
        self,
        agency: str,
        index: int,
        e: AuditEntry,
        valid: dict[tuple[uuid.UUID, str], bytes],
        logged: dict[str, set[bytes]],
    ) -> None:
        if e.message_id is None or e.sender is None:
            return  # impossible: a delivery entry requires both (AuditEntry._check_kind)
        where = f"{agency} log entry {index}"
        sender = e.sender.agency_id
        published = self.by_message.get(e.message_id)
        same = (
            published is not None
            and published.signing_digest is not None
            and e.signing_digest is not None
            and hmac.compare_digest(published.signing_digest, e.signing_digest)
        )
        if not same:
            self.add(
                FindingKind.DELIVERY_WITHOUT_PUBLISH, where,
                f"{agency} logged a delivery of {e.message_id} that {sender}'s log does not "
                "hold as published",
            )  # fmt: skip
        digest = valid.get((e.message_id, agency))
        if digest is None:
            self.add(
                FindingKind.MISSING_RECEIPT, where,
                f"{agency} stored message {e.message_id} from {sender} but no valid receipt "
                f"from {agency} is on receipts.{sender}",
            )  # fmt: skip
            return
        if digest not in logged.get(sender, set()):
            self.add(
                FindingKind.RECEIPT_NOT_LOGGED, where,
                f"{sender} has not logged {agency}'s receipt for {e.message_id}",
            )  # fmt: skip
