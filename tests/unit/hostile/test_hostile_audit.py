"""The audit log reader under hostile input: entries, entries files, checkpoint notes,
receipts and export bundles. Every rejection is a typed error (``AuditFormatError``,
``AuditLogCorruptError``, ``AuditStorageError``, ``IntegrityError``) or an auditor finding;
nothing is accepted silently and no read is larger than its format allows."""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.audit import AgencyNoteSigner, AuditLog, SignedCheckpoint, WitnessPolicy
from exchange.audit.codec import MAX_ENTRY_BYTES, decode_entry, encode_entry
from exchange.audit.errors import AuditFormatError, AuditLogCorruptError, AuditStorageError
from exchange.audit.export import BUNDLE_FORMAT, MANIFEST, read_bundle
from exchange.audit.note import MAX_NOTE_BYTES, Note
from exchange.audit.receipt import Receipt, verify_receipt
from exchange.audit.storage import FILE_MAGIC
from exchange.audit.verifier import FindingKind, verify_log
from exchange.crypto.testing import InMemoryTrust
from exchange.errors import IntegrityError, IntegrityReason
from tests.unit.audit.audit_world import LOG_AGENCY, NOW, agency, sample_entry
from tests.unit.hostile.hostile_support import hostile, peak_kib, varint

ENTRIES = 12


@dataclass(frozen=True)
class LogFiles:
    """The bytes of a MEX-FGR log directory whose every entry a signed checkpoint covers."""

    origin: bytes
    entries: bytes
    note_name: str
    note: bytes
    trust: InMemoryTrust
    root: bytes

    def write(self, directory: Path, *, entries: bytes | None = None) -> Path:
        (directory / "checkpoints").mkdir(parents=True)
        (directory / "ORIGIN").write_bytes(self.origin)
        (directory / "entries.bin").write_bytes(self.entries if entries is None else entries)
        (directory / "checkpoints" / self.note_name).write_bytes(self.note)
        return directory


@cache
def log_files() -> LogFiles:
    fgr, atf = agency("MEX-FGR"), agency("USA-ATF")
    trust = InMemoryTrust.of(fgr, atf)

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "log"
        with AuditLog.open(d, agency_id=LOG_AGENCY) as log:
            log.append_many(sample_entry(i) for i in range(ENTRIES))
            signed = log.checkpoint(AgencyNoteSigner(fgr, at=NOW), now=NOW)
            root = log.root()
        [note] = (d / "checkpoints").iterdir()
        return LogFiles(
            (d / "ORIGIN").read_bytes(), (d / "entries.bin").read_bytes(), note.name,
            signed.encode(), trust, root,
        )  # fmt: skip


def _policy() -> WitnessPolicy:
    return WitnessPolicy(frozenset({"USA-ATF"}), 1)


# --- entries -------------------------------------------------------------------------------


def test_every_truncation_of_an_entry_is_refused() -> None:
    data = encode_entry(sample_entry(3))
    for cut in range(len(data)):
        with pytest.raises(AuditFormatError):
            decode_entry(data[:cut])


@hostile(150)
@given(i=st.integers(0, 50), pos=st.integers(0), bit=st.integers(0, 7))
def test_a_flipped_bit_is_refused_or_is_another_canonical_entry(i: int, pos: int, bit: int) -> None:
    data = bytearray(encode_entry(sample_entry(i)))
    data[pos % len(data)] ^= 1 << bit
    try:
        entry = decode_entry(bytes(data))
    except AuditFormatError:
        return
    # A flip inside a digest is a different, valid entry: then it has exactly these bytes.
    assert encode_entry(entry) == bytes(data)
    assert entry != sample_entry(i)


@hostile(150)
@given(body=st.binary(max_size=2048))
def test_random_bytes_after_the_magic_are_refused(body: bytes) -> None:
    for data in (body, b"XA\x01" + body):
        try:
            entry = decode_entry(data)
        except AuditFormatError:
            continue
        assert encode_entry(entry) == data  # only a canonical entry can decode


def test_an_entry_declaring_a_2_gib_string_costs_nothing() -> None:
    # kind (enum index 0), time (a long), then logAgency's length: 2 GiB.
    hostile_entry = b"XA\x01" + varint(0) + varint(1) + varint(2**31)

    def attempt() -> None:
        with pytest.raises(AuditFormatError):
            decode_entry(hostile_entry)

    assert peak_kib(attempt) < 256
    with pytest.raises(AuditFormatError, match="exceeds"):
        decode_entry(b"XA\x01" + bytes(MAX_ENTRY_BYTES))


# --- the entries file ----------------------------------------------------------------------


@hostile(30)
@given(pos=st.integers(0), xor=st.integers(1, 255))
def test_damage_to_checkpointed_entries_refuses_to_open(pos: int, xor: int) -> None:
    files = log_files()
    blob = bytearray(files.entries)
    where = len(FILE_MAGIC) + pos % (len(blob) - len(FILE_MAGIC))
    blob[where] ^= xor
    with tempfile.TemporaryDirectory() as tmp:
        d = files.write(Path(tmp) / "log", entries=bytes(blob))
        findings = verify_log(d, agency_id=LOG_AGENCY, trust=files.trust, policy=_policy())
        assert findings  # the auditor reports it ...
        with pytest.raises(AuditLogCorruptError):  # ... and the writer never opens it
            AuditLog.open(d, agency_id=LOG_AGENCY)


def test_every_truncation_of_checkpointed_entries_refuses_to_open() -> None:
    files = log_files()
    step = max(1, (len(files.entries) - len(FILE_MAGIC)) // 47)  # ~50 cuts, and the last byte
    cuts = {*range(len(FILE_MAGIC), len(files.entries), step), len(files.entries) - 1}
    for cut in sorted(cuts):
        with tempfile.TemporaryDirectory() as tmp:
            d = files.write(Path(tmp) / "log", entries=files.entries[:cut])
            with pytest.raises(AuditLogCorruptError):
                AuditLog.open(d, agency_id=LOG_AGENCY)


@hostile(20)
@given(garbage=st.binary(min_size=1, max_size=MAX_ENTRY_BYTES + 64))
def test_garbage_after_the_entries_is_a_torn_tail_or_damage(garbage: bytes) -> None:
    files = log_files()
    with tempfile.TemporaryDirectory() as tmp:
        d = files.write(Path(tmp) / "log", entries=files.entries + garbage)
        findings = verify_log(d, agency_id=LOG_AGENCY, trust=files.trust, policy=_policy())
        kinds = {f.kind for f in findings}
        assert kinds & {FindingKind.TORN_TAIL, FindingKind.CORRUPT_ENTRIES}
        with AuditLog.open(d, agency_id=LOG_AGENCY) as log:
            # A torn last write is cut; the checkpointed entries are all still there.
            assert (log.size, log.root()) == (ENTRIES, files.root)
        assert (d / "entries.bin").read_bytes() == files.entries


def test_a_tail_longer_than_one_frame_is_damage_not_a_torn_write() -> None:
    files = log_files()
    with tempfile.TemporaryDirectory() as tmp:
        d = files.write(Path(tmp) / "log", entries=files.entries + bytes(MAX_ENTRY_BYTES + 13))
        with pytest.raises(AuditLogCorruptError, match="damaged frame"):
            AuditLog.open(d, agency_id=LOG_AGENCY)


# --- checkpoint notes ----------------------------------------------------------------------


@hostile(150)
@given(data=st.data())
def test_a_mutated_checkpoint_never_verifies_as_another_checkpoint(data: st.DataObject) -> None:
    files = log_files()
    note = files.note
    start = data.draw(st.integers(0, len(note)))
    end = data.draw(st.integers(start, min(len(note), start + 16)))
    mutated = note[:start] + data.draw(st.binary(max_size=16)) + note[end:]
    try:
        signed = SignedCheckpoint.parse(mutated)
    except AuditFormatError:
        return
    assert signed.encode() == mutated  # one note, one byte string
    original = SignedCheckpoint.parse(note).checkpoint
    if signed.verify_log_signature(files.trust):
        assert signed.checkpoint == original  # nobody but the log signs another body


@hostile(100)
@given(text=st.text(max_size=512))
def test_random_note_text_is_a_format_error(text: str) -> None:
    for data in (text.encode(), text.encode() + b"\n\n\xe2\x80\x94 x AAAAAAA=\n"):
        try:
            note = Note.parse(data)
        except AuditFormatError:
            continue
        assert note.encode() == data


def test_oversized_or_unreadable_checkpoint_files_are_refused_without_reading_them() -> None:
    files = log_files()
    with tempfile.TemporaryDirectory() as tmp:
        d = files.write(Path(tmp) / "log")
        big = d / "checkpoints" / f"{ENTRIES + 1:020d}.note"
        with big.open("wb") as f:
            f.truncate(64 << 20)  # sparse: 64 MiB claimed, nothing on disk

        def open_log() -> None:
            with pytest.raises(AuditLogCorruptError, match=f"exceeds {MAX_NOTE_BYTES}"):
                AuditLog.open(d, agency_id=LOG_AGENCY)

        def audit() -> None:
            findings = verify_log(d, agency_id=LOG_AGENCY, trust=files.trust, policy=_policy())
            assert any(f.kind is FindingKind.BAD_CHECKPOINT for f in findings)

        assert peak_kib(open_log) < 1024  # read within the note bound, never 64 MiB
        assert peak_kib(audit) < 1024
        big.unlink()
        big.mkdir()  # a directory where a checkpoint file belongs
        with pytest.raises(AuditStorageError, match="cannot read"):
            AuditLog.open(d, agency_id=LOG_AGENCY)
        findings = verify_log(d, agency_id=LOG_AGENCY, trust=files.trust, policy=_policy())
        assert any(f.kind is FindingKind.BAD_CHECKPOINT and "cannot read" in f.message
                   for f in findings)  # fmt: skip


def test_a_huge_origin_file_is_another_log_without_reading_it() -> None:
    files = log_files()
    with tempfile.TemporaryDirectory() as tmp:
        d = files.write(Path(tmp) / "log")
        with (d / "ORIGIN").open("ab") as f:
            f.truncate(64 << 20)

        def attempt() -> None:
            with pytest.raises(AuditLogCorruptError, match="holds the log"):
                AuditLog.open(d, agency_id=LOG_AGENCY)

        assert peak_kib(attempt) < 1024


# --- receipts --------------------------------------------------------------------------------


@hostile(100)
@given(data=st.binary(max_size=1024))
def test_random_receipts_are_malformed_integrity_errors(data: bytes) -> None:
    files = log_files()
    with pytest.raises(IntegrityError) as info:
        verify_receipt(
            data, trust=files.trust, message_id=uuid.UUID(int=7), signing_digest=bytes(32),
            sender=LOG_AGENCY,
        )  # fmt: skip
    assert info.value.reason in {IntegrityReason.MALFORMED, IntegrityReason.BAD_SIGNATURE}


@hostile(100)
@given(text=st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300))
def test_random_receipt_text_is_a_format_error(text: str) -> None:
    for candidate in (text, text + "\n"):
        try:
            receipt = Receipt.parse(candidate)
        except AuditFormatError:
            continue
        assert receipt.text() == candidate


# --- export bundles (what an auditor receives from another agency) --------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                               max_size=4),
    max_leaves=12,
)  # fmt: skip
_DEEP = "[" * 100_000 + "]" * 100_000


def _bundle(root: Path, files: dict[str, str]) -> Path:
    (root / "bus").mkdir(parents=True)
    defaults = {
        "meta.json": json.dumps({"format": BUNDLE_FORMAT, "topicPrefix": ""}),
        "bus/envelopes.jsonl": "",
        "bus/watermarks.json": "[]",
        "bus/receipts.json": "{}",
        "bus/checkpoints.json": "{}",
    }
    manifest = []
    for rel, text in sorted({**defaults, **files}.items()):
        (root / rel).write_text(text, encoding="utf-8")
        manifest.append(f"{hashlib.sha256(text.encode()).hexdigest()}  {rel}\n")
    (root / MANIFEST).write_text("".join(manifest), encoding="utf-8")  # hostile, but consistent
    return root


_FILES = ["meta.json", "bus/envelopes.jsonl", "bus/watermarks.json", "bus/receipts.json",
          "bus/checkpoints.json"]  # fmt: skip
_HOSTILE_JSON = [
    *[(rel, _DEEP) for rel in _FILES],  # 100,000 levels: deeper than any parser's recursion
    *[(rel, '{"a":' * 100_000 + "1" + "}" * 100_000) for rel in _FILES],
    *[(rel, "7") for rel in _FILES],  # a number where a list or a map belongs
    ("bus/receipts.json", "[]"),  # a list where a map belongs
    ("bus/checkpoints.json", '["x"]'),
    ("bus/watermarks.json", '{"abcd": 1}'),
    (
        "bus/envelopes.jsonl",
        json.dumps(
            dict.fromkeys(["topic", "partition", "offset"], 0) | {"timestampMs": 0, "value": 5}
        ),
    ),
    ("meta.json", '{"format": 1}'),
]


@pytest.mark.parametrize(("rel", "text"), _HOSTILE_JSON, ids=lambda x: str(x)[:20])
def test_hostile_bundle_json_is_a_finding_never_a_crash(rel: str, text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bundle, findings = read_bundle(_bundle(Path(tmp), {rel: text}))
    assert bundle is None
    assert [f.kind for f in findings] == [FindingKind.MISSING_FILE]
    assert "not a bundle" in findings[0].message


def test_the_default_bundle_of_these_tests_is_readable() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bundle, findings = read_bundle(_bundle(Path(tmp), {}))
    assert bundle is not None
    assert findings == []


@hostile(50)
@given(rel=st.sampled_from(_FILES), value=_JSON)
def test_random_bundle_json_is_a_finding_never_a_crash(rel: str, value: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bundle, findings = read_bundle(_bundle(Path(tmp), {rel: json.dumps(value)}))
    if bundle is None:
        assert findings  # refused, and the auditor is told why
