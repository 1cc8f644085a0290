"""Attacks on the audit log, each named after the attack; the offline verifier must find it.

The attacker controls the log directory (it can rewrite entries with valid frames and even
sign new checkpoints with the log key); it cannot make the counterpart's witness cosign a
view inconsistent with what that witness already cosigned.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from exchange.audit import (
    AgencyNoteSigner,
    AuditLog,
    Finding,
    FindingKind,
    SignedCheckpoint,
    WitnessPolicy,
    cosign,
    encode_entry,
    sign_checkpoint,
    verify_log,
)
from exchange.audit.storage import FILE_MAGIC, frame, scan_frames
from tests.unit.audit.audit_world import LOG_AGENCY, NOW, AuditWorld, sample_entry
from tests.unit.audit.test_audit_note import RawSigner


@pytest.fixture
def logged(world: AuditWorld) -> AuditWorld:
    """A MEX-FGR log of 10 entries with checkpoints at 4 and 10, both cosigned by USA-ATF."""
    witness = world.witness()
    with world.open_log() as log:
        world.grow(log, 4, witnesses=(witness,))
        world.grow(log, 6, witnesses=(witness,))
    return world


def _verify(world: AuditWorld, policy: WitnessPolicy | None = None, **kw: object) -> list[Finding]:
    return verify_log(world.log_dir, agency_id=LOG_AGENCY, trust=world.trust,
                      policy=policy or world.policy(), **kw)  # type: ignore[arg-type]  # fmt: skip


def _kinds(findings: list[Finding]) -> set[FindingKind]:
    return {f.kind for f in findings}


def _rewrite(world: AuditWorld, edit: Callable[[list[bytes]], list[bytes]]) -> None:
    """Rewrite the entries file with intact frames (a careful attacker, not a crash)."""
    path = world.log_dir / "entries.bin"
    entries = edit(scan_frames(path.read_bytes()).entries)
    path.write_bytes(FILE_MAGIC + b"".join(frame(e) for e in entries))


def _checkpoint_file(world: AuditWorld, name: str, signed: SignedCheckpoint) -> Path:
    path = world.log_dir / "checkpoints" / name
    path.write_bytes(signed.encode())
    return path


def test_untouched_log_verifies(logged: AuditWorld) -> None:
    assert _verify(logged) == []


def test_entry_altered(logged: AuditWorld) -> None:
    def alter(entries: list[bytes]) -> list[bytes]:
        entries[6] = encode_entry(sample_entry(99))  # a well-formed, different entry
        return entries

    _rewrite(logged, alter)
    findings = _verify(logged)
    assert _kinds(findings) == {FindingKind.ROOT_MISMATCH}
    (f,) = findings
    assert "size 10" in f.message
    assert "in 4..9" in f.message  # the checkpoint of size 4 still holds
    assert f.where.endswith("00000000000000000010.note")


def test_entry_altered_into_garbage(logged: AuditWorld) -> None:
    _rewrite(logged, lambda e: [*e[:2], b"XA\x01garbage", *e[3:]])
    assert {FindingKind.BAD_ENTRY, FindingKind.ROOT_MISMATCH} <= _kinds(_verify(logged))


def test_entry_deleted(logged: AuditWorld) -> None:
    _rewrite(logged, lambda e: e[:2] + e[3:])
    kinds = _kinds(_verify(logged))
    assert kinds == {FindingKind.ROOT_MISMATCH, FindingKind.CHECKPOINT_BEYOND_LOG}


def test_last_entries_deleted(logged: AuditWorld) -> None:
    _rewrite(logged, lambda e: e[:8])
    findings = _verify(logged)
    assert _kinds(findings) == {FindingKind.CHECKPOINT_BEYOND_LOG}
    assert "only 8 entries" in findings[0].message


def test_entries_reordered(logged: AuditWorld) -> None:
    _rewrite(logged, lambda e: [*e[:7], e[8], e[7], *e[9:]])
    findings = _verify(logged)
    assert _kinds(findings) == {FindingKind.ROOT_MISMATCH}
    assert "in 4..9" in findings[0].message


def test_entry_inserted(logged: AuditWorld) -> None:
    _rewrite(logged, lambda e: [*e[:5], encode_entry(sample_entry(50)), *e[5:]])
    kinds = _kinds(_verify(logged))
    assert kinds == {FindingKind.ROOT_MISMATCH, FindingKind.UNCHECKPOINTED_ENTRIES}


def test_entry_of_another_agency_smuggled_in(logged: AuditWorld) -> None:
    _rewrite(logged, lambda e: [*e, encode_entry(sample_entry(11, log_agency="USA-CBP"))])
    assert FindingKind.WRONG_LOG in _kinds(_verify(logged))


def test_forked_log_same_size_different_root(logged: AuditWorld) -> None:
    # The log key signs a second checkpoint of size 10 over other entries (a split view).
    with AuditLog.open(logged.home / "fork", agency_id=LOG_AGENCY) as fork:
        fork.append_many(sample_entry(i if i != 8 else 800) for i in range(10))
        forked = fork.checkpoint(logged.log_signer(), now=NOW + timedelta(hours=2))
    _checkpoint_file(logged, "fork.note", forked)
    kinds = _kinds(_verify(logged))
    assert {FindingKind.FORK, FindingKind.ROOT_MISMATCH, FindingKind.QUORUM_NOT_MET} <= kinds


def test_forked_view_shown_to_another_party_is_found(logged: AuditWorld) -> None:
    # An auditor brings a checkpoint the log showed someone else (e.g. on the audit topic).
    with AuditLog.open(logged.home / "fork", agency_id=LOG_AGENCY) as fork:
        fork.append_many(sample_entry(i) for i in range(4))
        fork.append_many(sample_entry(100 + i) for i in range(6))
        forked = fork.checkpoint(logged.log_signer(), now=NOW + timedelta(hours=2))
    findings = _verify(logged, extra_checkpoints=[forked.encode()])
    assert FindingKind.FORK in _kinds(findings)
    assert any(f.where == "extra checkpoint 0" for f in findings)


def test_smaller_tree_not_a_prefix(logged: AuditWorld) -> None:
    with AuditLog.open(logged.home / "fork", agency_id=LOG_AGENCY) as fork:
        fork.append_many(sample_entry(i if i != 1 else 111) for i in range(6))
        smaller = fork.checkpoint(logged.log_signer(), now=NOW + timedelta(hours=2))
    findings = _verify(logged, extra_checkpoints=[smaller.encode()])
    assert [f.kind for f in findings if f.where == "extra checkpoint 0"] == [
        FindingKind.QUORUM_NOT_MET,
        FindingKind.ROOT_MISMATCH,
    ]


def test_checkpoint_without_witness_quorum(logged: AuditWorld) -> None:
    findings = _verify(logged, policy=logged.policy(quorum=2))
    assert [f.kind for f in findings] == [FindingKind.QUORUM_NOT_MET] * 2
    assert "cosigned by ['USA-ATF'], needs 2" in findings[0].message


def test_new_checkpoint_never_witnessed(logged: AuditWorld) -> None:
    with logged.open_log() as log:
        logged.grow(log, 2)  # signed by the log, not sent to any witness
    findings = _verify(logged)
    assert [f.kind for f in findings] == [FindingKind.QUORUM_NOT_MET]
    assert "nobody" in findings[0].message


def test_cosignature_by_an_untrusted_key_does_not_count(logged: AuditWorld) -> None:
    with logged.open_log() as log:
        signed = logged.grow(log, 1)
        impostor = RawSigner(
            "exchange.bus/key/USA-ATF/classic-1", ed25519.Ed25519PrivateKey.generate()
        )
        log.add_cosignature(
            signed, cosign(signed.checkpoint, impostor, timestamp=int(NOW.timestamp()))
        )
    assert [f.kind for f in _verify(logged)] == [FindingKind.QUORUM_NOT_MET]


def test_self_cosignature_by_the_log_agency_does_not_count(logged: AuditWorld) -> None:
    with logged.open_log() as log:
        signed = logged.grow(log, 1)
        log.add_cosignature(signed, cosign(signed.checkpoint, logged.log_signer(),
                                           timestamp=int(NOW.timestamp())))  # fmt: skip
    policy = WitnessPolicy(frozenset({"USA-ATF", LOG_AGENCY}), quorum=1)
    assert [f.kind for f in _verify(logged, policy=policy)] == [FindingKind.QUORUM_NOT_MET]


def test_checkpoint_signed_by_another_agency(logged: AuditWorld) -> None:
    with logged.open_log() as log:
        log.append(sample_entry(10))
        cp = logged.grow(log, 0).checkpoint
    forged = sign_checkpoint(cp, AgencyNoteSigner(logged.cbp, at=NOW))
    _checkpoint_file(logged, f"{cp.size:020d}.note", forged)
    assert FindingKind.BAD_LOG_SIGNATURE in _kinds(_verify(logged))


def test_torn_tail_is_reported(logged: AuditWorld) -> None:
    with (logged.log_dir / "entries.bin").open("ab") as f:
        f.write(frame(encode_entry(sample_entry(10)))[:30])
    assert _kinds(_verify(logged)) == {FindingKind.TORN_TAIL}


def test_missing_entries_file(logged: AuditWorld) -> None:
    (logged.log_dir / "entries.bin").unlink()
    assert _kinds(_verify(logged)) == {FindingKind.MISSING_FILE}


def test_malformed_checkpoint_file(logged: AuditWorld) -> None:
    (logged.log_dir / "checkpoints" / "x.note").write_bytes(b"exchange.bus/audit/v1/MEX-FGR\n")
    assert _kinds(_verify(logged)) == {FindingKind.BAD_CHECKPOINT}


def test_findings_serialize_for_the_cli(logged: AuditWorld) -> None:
    _rewrite(logged, lambda e: e[:9])
    (d,) = [f.to_dict() for f in _verify(logged)]
    assert d["kind"] == "checkpoint_beyond_log"
    assert set(d) == {"kind", "where", "message"}
