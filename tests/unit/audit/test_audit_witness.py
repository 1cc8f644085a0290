"""Witnesses cosign only consistent extensions of what they last cosigned (C2SP tlog-witness)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from exchange.audit import (
    AgencyNoteSigner,
    AuditLog,
    RefusalReason,
    SignedCheckpoint,
    Witness,
    WitnessPolicy,
    WitnessRefusedError,
    sign_checkpoint,
)
from tests.unit.audit.audit_world import LOG_AGENCY, NOW, AuditWorld, sample_entry


def _forked_log(world: AuditWorld, size: int, *, diverge_at: int) -> AuditLog:
    """The same agency's log with other entries from ``diverge_at`` on (a split view)."""
    log = AuditLog.open(world.home / "fork", agency_id=LOG_AGENCY)
    log.append_many(sample_entry(i if i < diverge_at else 10_000 + i) for i in range(size))
    return log


def _refusal(
    witness: Witness, signed: SignedCheckpoint, old: int, proof: list[bytes]
) -> WitnessRefusedError:
    with pytest.raises(WitnessRefusedError) as info:
        witness.add_checkpoint(signed.encode(), old_size=old, proof=proof, now=NOW)
    return info.value


def test_witness_cosigns_extensions_and_remembers_across_restarts(world: AuditWorld) -> None:
    with world.open_log() as log:
        first = world.grow(log, 4, witnesses=(world.witness(),))
        assert world.policy().satisfied(first, world.trust)
        restarted = world.witness()  # a new process over the same state directory
        state = restarted.state(LOG_AGENCY)
        assert state is not None
        assert state == first.checkpoint
        second = world.grow(log, 3, witnesses=(restarted,))
        assert world.policy().counted(second, world.trust) == {"USA-ATF"}
        assert restarted.state(LOG_AGENCY) == second.checkpoint


def test_witness_refuses_a_forked_log(world: AuditWorld) -> None:
    witness = world.witness()
    with world.open_log() as log:
        world.grow(log, 5, witnesses=(witness,))
        with _forked_log(world, 8, diverge_at=3) as fork:
            forked = fork.checkpoint(world.log_signer(), now=NOW + timedelta(minutes=5))
            error = _refusal(witness, forked, 5, fork.consistency_proof(5))
    assert error.reason is RefusalReason.INCONSISTENT
    assert witness.state(LOG_AGENCY) is not None
    assert witness.state(LOG_AGENCY).size == 5  # type: ignore[union-attr]  # checked above


def test_witness_refuses_same_size_with_another_root(world: AuditWorld) -> None:
    witness = world.witness()
    with world.open_log() as log:
        world.grow(log, 5, witnesses=(witness,))
    with _forked_log(world, 5, diverge_at=4) as fork:
        forked = fork.checkpoint(world.log_signer(), now=NOW + timedelta(minutes=5))
        assert _refusal(witness, forked, 5, []).reason is RefusalReason.INCONSISTENT


def test_witness_refuses_a_rollback_to_a_smaller_tree(world: AuditWorld) -> None:
    witness = world.witness()
    with world.open_log() as log:
        first = world.grow(log, 3, witnesses=(witness,))
        world.grow(log, 3, witnesses=(witness,))
        assert _refusal(witness, first, 6, []).reason is RefusalReason.ROLLBACK


def test_witness_refuses_a_checkpoint_older_than_the_last(world: AuditWorld) -> None:
    witness = world.witness()
    with world.open_log() as log:
        first = world.grow(log, 3, witnesses=(witness,))
        log.append(sample_entry(3))
        older = sign_checkpoint(
            dataclasses.replace(
                first.checkpoint, size=4, root=log.root(), time=first.checkpoint.time - 1
            ),
            world.log_signer(),
        )
        assert (
            _refusal(witness, older, 3, log.consistency_proof(3)).reason is RefusalReason.ROLLBACK
        )


def test_witness_reports_its_size_on_a_stale_old_size(world: AuditWorld) -> None:
    witness = world.witness()
    with world.open_log() as log:
        world.grow(log, 3, witnesses=(witness,))
        second = world.grow(log, 2)
        error = _refusal(witness, second, 0, [])
        assert (error.reason, error.known_size) == (RefusalReason.CONFLICT, 3)
        line = witness.add_checkpoint(second.encode(), old_size=3,
                                      proof=log.consistency_proof(3), now=NOW)  # fmt: skip
        assert WitnessPolicy(frozenset({"USA-ATF"}), 1).satisfied(
            log.add_cosignature(second, line), world.trust
        )


def test_witness_refuses_a_checkpoint_the_log_did_not_sign(world: AuditWorld) -> None:
    witness = world.witness()
    with world.open_log() as log:
        log.append(sample_entry(0))
        signed = log.checkpoint(world.log_signer(), now=NOW)
    by_cbp = sign_checkpoint(signed.checkpoint, AgencyNoteSigner(world.cbp, at=NOW))
    assert _refusal(witness, by_cbp, 0, []).reason is RefusalReason.BAD_SIGNATURE
    assert witness.state(LOG_AGENCY) is None


def test_witness_refuses_unknown_logs_and_malformed_requests(world: AuditWorld) -> None:
    witness = world.witness()
    other = AuditLog.open(world.home / "cbp", agency_id="USA-CBP")
    other.append(sample_entry(0, log_agency="USA-CBP"))
    signed = other.checkpoint(AgencyNoteSigner(world.cbp, at=NOW), now=NOW)
    other.close()
    assert _refusal(witness, signed, 0, []).reason is RefusalReason.UNKNOWN_LOG
    with pytest.raises(WitnessRefusedError) as info:
        witness.add_checkpoint(b"not a note", old_size=0, proof=[], now=NOW)
    assert info.value.reason is RefusalReason.MALFORMED


def test_a_witness_never_follows_its_own_log(world: AuditWorld) -> None:
    with pytest.raises(ValueError, match="never its own"):
        Witness(world.home / "w", signer=world.log_signer(), trust=world.trust, logs={LOG_AGENCY})


def test_policy_fails_closed(world: AuditWorld) -> None:
    with pytest.raises(ValueError, match="quorum"):
        WitnessPolicy(frozenset(), quorum=0)
    with pytest.raises(ValueError, match="quorum"):
        WitnessPolicy(frozenset({"USA-ATF"}), quorum=2)
    with world.open_log() as log:
        signed = world.grow(log, 2, witnesses=(world.witness(),))
    assert world.policy(quorum=1).satisfied(signed, world.trust)
    assert not world.policy(quorum=2).satisfied(signed, world.trust)


def test_witness_refuses_a_checkpoint_from_the_future(world: AuditWorld) -> None:
    witness = world.witness()
    with world.open_log() as log:
        log.append(sample_entry(0))
        future = log.checkpoint(world.log_signer(), now=NOW + timedelta(minutes=11))
    error = _refusal(witness, future, 0, [])
    assert error.reason is RefusalReason.MALFORMED
    assert "future" in str(error)
    assert witness.state(LOG_AGENCY) is None
