"""The on-disk log: durable appends, crash recovery, proofs against signed checkpoints."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from exchange.audit import (
    AgencyNoteSigner,
    AuditLog,
    AuditLogCorruptError,
    AuditStorageError,
    decode_entry,
    encode_entry,
    hash_leaf,
    verify_consistency,
    verify_inclusion,
)
from exchange.audit.storage import FILE_MAGIC, frame
from tests.unit.audit.audit_world import LOG_AGENCY, NOW, AuditWorld, sample_entry


def _entries_file(world: AuditWorld) -> Path:
    return world.log_dir / "entries.bin"


def test_appends_survive_reopen_with_the_same_tree(world: AuditWorld) -> None:
    with world.open_log() as log:
        assert log.append(sample_entry(0)) == 0
        assert log.append_many(sample_entry(i) for i in range(1, 5)) == range(1, 5)
        root, size = log.root(), log.size
    with world.open_log() as log:
        assert (log.size, log.root()) == (size, root) == (5, root)
        assert decode_entry(log.entry_bytes(3)) == sample_entry(3)
        assert log.root_at(5) == root


def test_file_layout_is_magic_then_frames(world: AuditWorld) -> None:
    with world.open_log() as log:
        log.append_many(sample_entry(i) for i in range(2))
    expected = (
        FILE_MAGIC + frame(encode_entry(sample_entry(0))) + frame(encode_entry(sample_entry(1)))
    )
    assert _entries_file(world).read_bytes() == expected
    assert (world.log_dir / "ORIGIN").read_text() == f"exchange.bus/audit/v1/{LOG_AGENCY}\n"


@pytest.mark.parametrize("keep", [1, 4, 100, -1])
def test_torn_last_write_is_cut_on_open_never_accepted(
    world: AuditWorld, keep: int, caplog: pytest.LogCaptureFixture
) -> None:
    with world.open_log() as log:
        log.append_many(sample_entry(i) for i in range(3))
        root = log.root()
    torn = frame(encode_entry(sample_entry(3)))[:keep]
    with _entries_file(world).open("ab") as f:
        f.write(torn)
    before = _entries_file(world).stat().st_size
    with caplog.at_level(logging.WARNING), world.open_log() as log:
        assert (log.size, log.root()) == (3, root)
        assert log.append(sample_entry(3)) == 3  # the next append starts on a clean boundary
    assert "torn last write" in caplog.text
    assert _entries_file(world).stat().st_size == before - len(torn) + len(
        frame(encode_entry(sample_entry(3)))
    )


def test_zero_filled_tail_after_a_crash_is_cut(world: AuditWorld) -> None:
    with world.open_log() as log:
        log.append(sample_entry(0))
    with _entries_file(world).open("ab") as f:
        f.write(bytes(4096))  # a file extended by the crash but never written
    with world.open_log() as log:
        assert log.size == 1


def test_bad_checksum_in_last_frame_is_a_torn_write(world: AuditWorld) -> None:
    with world.open_log() as log:
        log.append_many(sample_entry(i) for i in range(2))
    data = bytearray(_entries_file(world).read_bytes())
    data[-1] ^= 0xFF
    _entries_file(world).write_bytes(bytes(data))
    with world.open_log() as log:
        assert log.size == 1


def test_damage_before_the_last_write_refuses_to_open(world: AuditWorld) -> None:
    with world.open_log() as log:
        log.append_many(sample_entry(i) for i in range(200))
    data = bytearray(_entries_file(world).read_bytes())
    data[len(FILE_MAGIC) + 40] ^= 0x01  # inside entry 0, with ~60 KiB of entries after it
    _entries_file(world).write_bytes(bytes(data))
    with pytest.raises(AuditLogCorruptError, match="damaged frame"):
        world.open_log()


def test_a_cut_below_a_signed_checkpoint_refuses_to_open(world: AuditWorld) -> None:
    with world.open_log() as log:
        log.append_many(sample_entry(i) for i in range(3))
        log.checkpoint(world.log_signer(), now=NOW)
    data = _entries_file(world).read_bytes()
    _entries_file(world).write_bytes(data[:-5])  # the checkpointed last entry is now "torn"
    with pytest.raises(AuditLogCorruptError, match="checkpoint covers 3"):
        world.open_log()


def test_another_agencys_entries_and_directory_are_refused(world: AuditWorld) -> None:
    with world.open_log() as log, pytest.raises(ValueError, match="USA-ATF"):
        log.append(sample_entry(0, log_agency="USA-ATF"))
    with pytest.raises(AuditLogCorruptError, match="holds the log"):
        AuditLog.open(world.log_dir, agency_id="USA-ATF")


def test_only_the_log_agency_signs_its_checkpoints(world: AuditWorld) -> None:
    with world.open_log() as log:
        log.append(sample_entry(0))
        with pytest.raises(ValueError, match="expected a key of MEX-FGR"):
            log.checkpoint(AgencyNoteSigner(world.atf, at=NOW), now=NOW)


def test_proofs_verify_against_signed_checkpoints(world: AuditWorld) -> None:
    with world.open_log() as log:
        first = world.grow(log, 5)
        second = world.grow(log, 8)
        assert first.verify_log_signature(world.trust)
        c1, c2 = first.checkpoint, second.checkpoint
        assert (c1.size, c2.size) == (5, 13)
        proof = log.consistency_proof(c1.size, c2.size)
        assert verify_consistency(c1.size, c2.size, c1.root, c2.root, proof)
        for i in range(c2.size):
            leaf = hash_leaf(log.entry_bytes(i))
            path = log.inclusion_proof(i, c2.size)
            assert verify_inclusion(leaf, i, c2.size, c2.root, path)
        assert [c.checkpoint.size for c in log.checkpoints()] == [5, 13]


def test_checkpointing_an_unchanged_tree_keeps_the_cosigned_checkpoint(world: AuditWorld) -> None:
    with world.open_log() as log:
        signed = world.grow(log, 3, witnesses=(world.witness(),))
        again = log.checkpoint(world.log_signer(), now=NOW.replace(year=2027))
    assert again == signed
    assert len(again.note.signatures) == 2  # log signature and the witness cosignature


def test_a_cosignature_for_an_unknown_checkpoint_is_refused(world: AuditWorld) -> None:
    with world.open_log() as log:
        signed = world.grow(log, 2)
        other = dataclasses.replace(signed.checkpoint, size=1)
        with pytest.raises(ValueError, match="no stored checkpoint"):
            log.add_cosignature(dataclasses.replace(signed, checkpoint=other),
                                signed.note.signatures[0])  # fmt: skip


def test_a_failed_fsync_appends_nothing(world: AuditWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    with world.open_log() as log:
        log.append(sample_entry(0))
        root = log.root()

        def broken_fsync(_fd: int) -> None:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr("exchange.audit.storage.os.fsync", broken_fsync)
        with pytest.raises(AuditStorageError, match="cannot append"):
            log.append(sample_entry(1))
        monkeypatch.undo()
        assert (log.size, log.root()) == (1, root)
        assert log.append(sample_entry(1)) == 1
    with world.open_log() as log:
        assert log.size == 2
        assert decode_entry(log.entry_bytes(1)) == sample_entry(1)
