"""The phase 2 pieces without a broker: AgencyAudit (lock, checkpoints, fail closed,
publication), the receipt collector, witnesses over log directories, bundles."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from exchange.audit import (
    AgencyNoteSigner,
    AuditStorageError,
    KafkaPosition,
    Receipt,
    ReceiptOutcome,
    SignedCheckpoint,
    Witness,
    WitnessPolicy,
    sign_receipt,
)
from exchange.audit.agency import AgencyAudit, locked_log
from exchange.audit.auditor import Evidence
from exchange.audit.collect import collect_receipts
from exchange.audit.export import read_bundle, write_bundle
from exchange.audit.witnessing import witness_logs, write_witness_policies
from exchange.errors import BrokerError
from tests.unit.audit.audit_world import NOW, AuditWorld, sample_entry


class _Recorder:
    """An AuditPublisher double that remembers what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, bytes]] = []

    def publish(self, entries: Sequence[bytes], first_index: int, checkpoint: bytes) -> None:
        self.calls.append((first_index, len(entries), checkpoint))


def _audit(world: AuditWorld, **kw: object) -> AgencyAudit:
    return AgencyAudit.open(world.log_dir, world.fgr, clock=lambda: NOW, **kw)  # type: ignore[arg-type]  # test pass-through


def test_a_second_writer_is_refused_while_the_log_is_open(world: AuditWorld) -> None:
    with _audit(world):
        with pytest.raises(AuditStorageError, match="in use by another writer"):
            _audit(world)
        with pytest.raises(AuditStorageError), locked_log(world.log_dir, "MEX-FGR"):
            pass  # a witness cannot open it either
    with _audit(world) as again:  # released on close
        assert again.log.size == 0


def test_checkpoints_come_every_n_entries_and_on_close_and_are_published(
    world: AuditWorld,
) -> None:
    publisher = _Recorder()
    with _audit(world, checkpoint_every=3, publisher=publisher) as audit:
        audit.record([sample_entry(i) for i in range(2)])
        assert audit.log.checkpoints() == []
        audit.record([sample_entry(2)])
        assert [c.checkpoint.size for c in audit.log.checkpoints()] == [3]
        assert audit.wait_published(timeout=10)
        audit.record([sample_entry(3)])
    sizes = [
        c.checkpoint.size for c in AgencyAudit.open(world.log_dir, world.fgr).log.checkpoints()
    ]
    assert sizes == [3, 4]
    # Each entry is published once, before the checkpoint that covers it.
    assert [(first, n) for first, n, _ in publisher.calls] == [(0, 3), (3, 1)]
    assert SignedCheckpoint.parse(publisher.calls[-1][2]).checkpoint.size == 4


def test_a_restart_publishes_only_what_was_not_published(world: AuditWorld) -> None:
    first = _Recorder()
    with _audit(world, publisher=first) as audit:
        audit.record([sample_entry(0), sample_entry(1)])
    second = _Recorder()
    with _audit(world, publisher=second) as audit:
        audit.record([sample_entry(2)])
    assert [(f, n) for f, n, _ in second.calls] == [(2, 1)]


class _Outage:
    """An AuditPublisher double whose cluster is away until ``back`` is set."""

    def __init__(self) -> None:
        self.back = threading.Event()
        self.failures = 0
        self.calls: list[tuple[int, int, bytes]] = []

    def publish(self, entries: Sequence[bytes], first_index: int, checkpoint: bytes) -> None:
        if not self.back.is_set():
            self.failures += 1
            raise BrokerError("create topic audit.MEX-FGR: no answer within 30 s")
        self.calls.append((first_index, len(entries), checkpoint))


def test_a_checkpoint_due_during_an_outage_is_kept_and_published_once_the_cluster_is_back(
    world: AuditWorld, caplog: pytest.LogCaptureFixture
) -> None:
    outage = _Outage()
    with _audit(
        world, checkpoint_every=2, publisher=outage, publish_retry=timedelta(milliseconds=20)
    ) as audit:
        # Neither record() nor checkpoint() fails while the audit topic cannot be reached.
        audit.record([sample_entry(i) for i in range(2)])
        audit.record([sample_entry(i) for i in range(2, 4)])
        assert [c.checkpoint.size for c in audit.log.checkpoints()] == [2, 4]
        assert not audit.wait_published(timeout=0.3)
        assert outage.failures >= 2  # retried
        assert audit.published == 0
        outage.back.set()
        assert audit.wait_published(timeout=10)
        assert audit.published == 4
    # One publication of every entry, with the latest checkpoint; one warning for the
    # outage and one when it is over.
    assert [(first, n) for first, n, _ in outage.calls] == [(0, 4)]
    assert SignedCheckpoint.parse(outage.calls[0][2]).checkpoint.size == 4
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len([w for w in warnings if "not yet published" in w]) == 1, warnings
    assert len([w for w in warnings if "reachable again" in w]) == 1, warnings


def test_what_an_outage_left_unpublished_on_close_is_published_by_the_next_writer(
    world: AuditWorld, caplog: pytest.LogCaptureFixture
) -> None:
    outage = _Outage()
    with _audit(
        world, publisher=outage, publish_retry=timedelta(milliseconds=20),
        close_timeout=timedelta(milliseconds=200),
    ) as audit:  # fmt: skip
        audit.record([sample_entry(0), sample_entry(1)])
    assert outage.calls == []
    assert any("the next writer of this log publishes it" in r.getMessage() for r in caplog.records)
    later = _Recorder()
    with _audit(world, publisher=later) as audit:
        assert audit.wait_published(timeout=10)  # on open, before anything new is logged
        assert [(f, n) for f, n, _ in later.calls] == [(0, 2)]
        audit.record([sample_entry(2)])
    assert [(f, n) for f, n, _ in later.calls] == [(0, 2), (2, 1)]


def test_a_log_that_cannot_be_written_fails_closed(
    world: AuditWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _audit(world) as audit:

        def broken(*_args: object) -> range:
            raise AuditStorageError("disk full")

        monkeypatch.setattr(audit.log, "append_many", broken)
        with pytest.raises(AuditStorageError, match="disk full"):
            audit.record([sample_entry(0)])
        monkeypatch.undo()
        assert audit.log.size == 0


def _receipt(world: AuditWorld, entry_index: int, **changes: object) -> bytes:
    e = sample_entry(entry_index)
    assert e.message_id is not None
    assert e.signing_digest is not None
    assert e.position is not None
    r = Receipt(
        message_id=e.message_id, signing_digest=e.signing_digest, sender="MEX-FGR",
        recipient="USA-ATF", position=e.position, time=NOW, outcome=ReceiptOutcome.STORED,
    )  # fmt: skip
    return sign_receipt(replace(r, **changes), AgencyNoteSigner(world.atf, at=NOW))  # type: ignore[arg-type]  # test pass-through


def test_the_collector_logs_valid_new_receipts_only(world: AuditWorld) -> None:
    good = _receipt(world, 0)
    elsewhere = _receipt(world, 1, position=KafkaPosition("mex-fgr.seizure", 0, 99))
    unknown = _receipt(world, 7)  # a message MEX-FGR never published
    wrong_digest = _receipt(world, 1, signing_digest=bytes(32))
    with _audit(world) as audit:
        audit.record([sample_entry(0), sample_entry(1)])
        tally = collect_receipts(
            audit, [good, elsewhere, unknown, wrong_digest, b"garbage"], trust=world.trust
        )
        assert (tally.logged, tally.refused) == (1, 4)
        again = collect_receipts(audit, [good], trust=world.trust)
        assert (again.logged, again.already_logged) == (0, 1)
        assert audit.log.size == 3


def test_witnesses_cosign_every_checkpoint_in_order_and_refuse_a_rewrite(
    world: AuditWorld,
) -> None:
    with _audit(world, checkpoint_every=2) as audit:
        for i in range(5):
            audit.record([sample_entry(i)])
    witness = Witness(
        world.home / "w", signer=AgencyNoteSigner(world.atf, at=NOW), trust=world.trust,
        logs={"MEX-FGR"},
    )  # fmt: skip
    outcomes = witness_logs(witness, {"MEX-FGR": world.log_dir}, now=NOW + timedelta(minutes=1))
    assert [(o.size, o.refused) for o in outcomes] == [(2, None), (4, None), (5, None)]
    assert witness_logs(witness, {"MEX-FGR": world.log_dir}, now=NOW) == []  # nothing new
    policy = WitnessPolicy(frozenset({"USA-ATF"}), 1)
    with locked_log(world.log_dir, "MEX-FGR") as log:
        assert all(policy.satisfied(c, world.trust) for c in log.checkpoints())
    # The log rewrites entry 0 and signs a bigger tree: the witness refuses.
    for path in (world.log_dir / "checkpoints").glob("*.note"):
        path.unlink()
    (world.log_dir / "entries.bin").unlink()
    with _audit(world) as audit:
        audit.record([replace(sample_entry(i), record_id=uuid.uuid4()) for i in range(6)])
    refused = witness_logs(witness, {"MEX-FGR": world.log_dir}, now=NOW + timedelta(minutes=2))
    assert len(refused) == 1
    assert "inconsistent" in (refused[0].refused or "")


def test_a_bundle_round_trips_and_its_manifest_catches_changes(
    world: AuditWorld, tmp_path: Path
) -> None:
    with _audit(world) as audit:
        audit.record([sample_entry(0)])
    trust_dir = tmp_path / "trust"
    (trust_dir / "roots").mkdir(parents=True)
    (trust_dir / "roots" / "r.pem").write_text("public\n")
    policy = tmp_path / "policy.json"
    write_witness_policies(policy, {"MEX": WitnessPolicy(frozenset({"USA-ATF"}), 1)})
    evidence = Evidence(receipts={"MEX-FGR": [b"note"]})
    out = tmp_path / "bundle"
    files = write_bundle(
        out, logs={"MEX-FGR": world.log_dir}, evidence=evidence, trust_dir=trust_dir,
        policy_path=policy, topic_prefix="t1.",
    )  # fmt: skip
    assert files >= 8
    assert not (out / "logs" / "MEX-FGR" / ".lock").exists()
    bundle, findings = read_bundle(out)
    assert findings == []
    assert bundle is not None
    assert (bundle.topic_prefix, bundle.evidence.receipts) == ("t1.", {"MEX-FGR": [b"note"]})
    (out / "logs" / "MEX-FGR" / "entries.bin").write_bytes(b"rewritten")
    (out / "extra.txt").write_text("planted")
    _, findings = read_bundle(out)
    assert {(f.kind.value, f.where) for f in findings} == {
        ("bundle_mismatch", "logs/MEX-FGR/entries.bin"),
        ("bundle_mismatch", "extra.txt"),
    }
    with pytest.raises(FileExistsError):
        write_bundle(
            out, logs={}, evidence=evidence, trust_dir=trust_dir, policy_path=policy,
            topic_prefix="",
        )  # fmt: skip
