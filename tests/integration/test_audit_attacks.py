"""Attacks on the audit trail, each found by ``exchange audit verify`` on the real broker.

A clean audited exchange runs once per module (MEX-FGR -> USA-ATF, USA-CBP -> MEX-SSPC, both
countries witnessing each other). Log attacks tamper with a copy of its audit directory, as a
dishonest agency (or anyone with its disk and, where said, its key) would; attacks on the bus
get their own topic prefix. Every test asserts the finding's kind *and* where it points.
"""

from __future__ import annotations

import dataclasses
import importlib
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from exchange.audit import (
    AgencyNoteSigner,
    Checkpoint,
    KafkaPosition,
    SignedCheckpoint,
    decode_entry,
    encode_entry,
    hash_leaf,
    log_origin,
    sign_checkpoint,
)
from exchange.audit.agency import AgencyAudit
from exchange.audit.storage import FILE_MAGIC, frame, scan_frames
from exchange.audit.tree import root_of
from exchange.audit_bus import AuditTopicWriter, read_topic
from exchange.crypto import SuiteId, seal
from exchange.policy import summary_from_handling
from exchange.producers.secure import SecureProducer
from exchange.records import record_type
from exchange.records.sample import generate_corpus
from exchange.routing import Reach, RoutingRule, RoutingTable, exchange_topic, receipts_topic
from tests.integration.secure_fixtures import (  # noqa: F401  # fixtures are imported by name
    AGENCIES,
    AuditedRun,
    Pki,
    RawMessage,
    audited_exchange,
    pki,
    produce_raw,
    readdressed,
    verify_audit,
    witness_all,
)

Findings = list[dict[str, str]]


@pytest.fixture(scope="module")
def clean_run(
    pki: Pki,  # noqa: F811  # the imported fixture, by name
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AuditedRun:
    corpus = generate_corpus(23, cases=1)
    records = list(corpus.records())
    flows = {("MEX-FGR", "USA-ATF"): records[:4], ("USA-CBP", "MEX-SSPC"): records[4:7]}
    return audited_exchange(pki, kafka_bootstrap, tmp_path_factory.mktemp("audited"), flows)


@pytest.fixture
def copy(clean_run: AuditedRun, tmp_path: Path) -> AuditedRun:
    """The clean run with its own copy of the home (logs, witness state, trust)."""
    home = tmp_path / "home"
    shutil.copytree(clean_run.home, home)
    return dataclasses.replace(clean_run, home=home)


def _log(run: AuditedRun, agency: str = "MEX-FGR") -> Path:
    return run.audit.log_dir(agency)


def _entries(run: AuditedRun, agency: str = "MEX-FGR") -> list[bytes]:
    return scan_frames((_log(run, agency) / "entries.bin").read_bytes()).entries


def _rewrite(run: AuditedRun, entries: list[bytes], agency: str = "MEX-FGR") -> None:
    # A careful attacker: every frame checksum is recomputed, so only the tree can tell.
    data = FILE_MAGIC + b"".join(frame(e) for e in entries)
    (_log(run, agency) / "entries.bin").write_bytes(data)


def _kinds(findings: Findings) -> set[str]:
    return {f["kind"] for f in findings}


def _where(p: KafkaPosition | None) -> str:
    assert p is not None
    return f"{p.topic}[{p.partition}]@{p.offset}"


def _has(findings: Findings, kind: str, where: str) -> bool:
    return any(f["kind"] == kind and where in f["where"] for f in findings)


def test_clean_audited_exchange_verifies(
    copy: AuditedRun, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify_audit(copy, monkeypatch, capsys) == (0, [])


def test_altered_log_entry_is_found(
    copy: AuditedRun, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = _entries(copy)
    original = decode_entry(entries[1])
    assert original.position is not None
    moved = dataclasses.replace(
        original.position, offset=original.position.offset + 1000
    )  # the log now claims another offset
    entries[1] = encode_entry(dataclasses.replace(original, position=moved))
    _rewrite(copy, entries)
    code, findings = verify_audit(copy, monkeypatch, capsys)
    assert code == 1
    assert _has(findings, "root_mismatch", "MEX-FGR log")
    assert any("0..1" in f["message"] or "in 0.." in f["message"] for f in findings)
    assert _has(findings, "not_in_log", _where(original.position))


def test_deleted_log_entry_is_found(
    copy: AuditedRun, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = _entries(copy)
    deleted = decode_entry(entries.pop(0))
    _rewrite(copy, entries)
    code, findings = verify_audit(copy, monkeypatch, capsys)
    assert code == 1
    # The first checkpoint no longer matches; the last one is now beyond the log.
    assert {"root_mismatch", "checkpoint_beyond_log"} <= _kinds(findings)
    assert _has(findings, "not_in_log", _where(deleted.position))


def test_reordered_log_entries_are_found(
    copy: AuditedRun, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = _entries(copy)
    entries[0], entries[1] = entries[1], entries[0]
    _rewrite(copy, entries)
    code, findings = verify_audit(copy, monkeypatch, capsys)
    assert code == 1
    mismatches = [f for f in findings if f["kind"] == "root_mismatch"]
    assert mismatches
    assert all("MEX-FGR log" in f["where"] for f in mismatches)


def test_inserted_log_entry_is_found(
    copy: AuditedRun, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = _entries(copy)
    forged = decode_entry(entries[0])
    entries.insert(1, encode_entry(dataclasses.replace(forged, record_id=None)))
    _rewrite(copy, entries)
    code, findings = verify_audit(copy, monkeypatch, capsys)
    assert code == 1
    assert _has(findings, "root_mismatch", "MEX-FGR log")


def _resign(run: AuditedRun, keys: Pki, entries: list[bytes]) -> SignedCheckpoint:
    """What MEX-FGR, holding its own key, does to rewrite history: replace its checkpoints by
    one over the rewritten entries (the witnesses' cosignatures cannot be carried over)."""
    folder = _log(run) / "checkpoints"
    for note in folder.glob("*.note"):
        note.unlink()
    now = datetime.now(UTC)
    root = root_of([hash_leaf(e) for e in entries])
    cp = Checkpoint(log_origin("MEX-FGR"), len(entries), root, int(now.timestamp()))
    signed = sign_checkpoint(cp, AgencyNoteSigner(keys.keys("MEX-FGR"), at=now))
    (folder / f"{len(entries):020d}.note").write_bytes(signed.encode())
    return signed


def _witnesses_refuse(keys: Pki, run: AuditedRun) -> list[str]:
    return [
        o.refused or ""
        for o in witness_all(keys, run.audit)
        if o.log_agency == "MEX-FGR" and o.refused is not None
    ]


def test_forked_log_same_size_different_root_is_found(
    pki: Pki,  # noqa: F811  # the imported fixture, by name
    copy: AuditedRun,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    entries = _entries(copy)
    first = decode_entry(entries[0])
    entries[0] = encode_entry(dataclasses.replace(first, record_id=None))
    _rewrite(copy, entries)
    forged = _resign(copy, pki, entries)
    # The witnesses remember the published history: none cosigns the fork.
    refusals = _witnesses_refuse(pki, copy)
    assert len(refusals) == 3
    assert all("inconsistent" in r for r in refusals)
    code, findings = verify_audit(copy, monkeypatch, capsys)
    assert code == 1
    forks = [f for f in findings if f["kind"] == "fork"]
    assert forks
    assert all(f"{copy.prefix}audit.MEX-FGR@" in f["where"] for f in forks)
    size = forged.checkpoint.size
    assert any(f"published size {size} " in f["message"] for f in forks)
    assert _has(findings, "quorum_not_met", f"{size:020d}.note")


def test_forked_log_smaller_tree_not_a_prefix_is_found(
    pki: Pki,  # noqa: F811  # the imported fixture, by name
    copy: AuditedRun,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    entries = _entries(copy)
    published = len(entries)
    first = decode_entry(entries[0])
    entries[0] = encode_entry(dataclasses.replace(first, record_id=None))
    entries.append(encode_entry(dataclasses.replace(decode_entry(entries[-1]), record_id=None)))
    _rewrite(copy, entries)
    _resign(copy, pki, entries)  # a bigger tree whose first entries are another history
    refusals = _witnesses_refuse(pki, copy)
    assert refusals
    assert all("inconsistent" in r for r in refusals)
    code, findings = verify_audit(copy, monkeypatch, capsys)
    assert code == 1
    forks = [f for f in findings if f["kind"] == "fork"]
    # Every checkpoint the log published, up to the last one, is no prefix of the new tree.
    assert any(f"published size {published} " in f["message"] for f in forks)
    assert all(f"{copy.prefix}audit.MEX-FGR@" in f["where"] for f in forks)


def test_checkpoint_without_witness_quorum_is_found(
    copy: AuditedRun, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = sorted((_log(copy) / "checkpoints").glob("*.note"))
    assert notes
    for path in notes:
        signed = SignedCheckpoint.parse(path.read_bytes())
        assert len(signed.note.signatures) == 4  # the log's and three witnesses'
        # One cosignature left: the quorum is two.
        kept = dataclasses.replace(signed.note, signatures=signed.note.signatures[:2])
        path.write_bytes(kept.encode())
    code, findings = verify_audit(copy, monkeypatch, capsys)
    assert code == 1
    for path in notes:
        assert _has(findings, "quorum_not_met", path.name)
    assert all("needs 2" in f["message"] for f in findings if f["kind"] == "quorum_not_met")
    first = decode_entry(_entries(copy)[0])
    assert _has(findings, "not_witnessed", _where(first.position))


# -- attacks on the bus: each on its own topic prefix ---------------------------------------


def test_envelope_on_a_topic_with_no_log_entry_is_found(
    pki: Pki,  # noqa: F811  # the imported fixture, by name
    kafka_bootstrap: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    record = generate_corpus(29, cases=1).of_type("seizure")[0]
    run = audited_exchange(pki, kafka_bootstrap, tmp_path, {("MEX-FGR", "USA-ATF"): [record]})
    assert verify_audit(run, monkeypatch, capsys) == (0, [])
    # MEX-FGR seals a record itself, off the books, and writes it to its own topic.
    rec = readdressed(record, "MEX-FGR", "USA-ATF")
    rtype = record_type("seizure")
    topic = exchange_topic("MEX-FGR", Reach.CROSS_BORDER, "seizure", prefix=run.prefix)
    blob = seal(
        rtype.encode(rec), sender=pki.keys("MEX-FGR"), trust=pki.trust, recipients=["USA-ATF"],
        suite=SuiteId.CLASSIC, record_type="seizure", schema_fingerprint=rtype.fingerprint,
        handling=summary_from_handling(rec.handling), topic=topic,
    )  # fmt: skip
    offset = produce_raw(kafka_bootstrap, RawMessage(topic, 0, 0, None, b""), value=blob)
    code, findings = verify_audit(run, monkeypatch, capsys)
    assert code == 1
    assert [(f["kind"], f["where"]) for f in findings] == [("not_in_log", f"{topic}[0]@{offset}")]


def _no_check(*_args: object, **_kwargs: object) -> None:
    return None


def test_record_sent_outside_its_releasability_is_found(
    pki: Pki,  # noqa: F811  # the imported fixture, by name
    kafka_bootstrap: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The envelope layer refuses to seal such a record; this is a rogue MEX-FGR build with
    # both policy checks patched out, publishing with its audit log on.
    run = audited_exchange(pki, kafka_bootstrap, tmp_path, {})
    record = readdressed(generate_corpus(31, cases=1).of_type("seizure")[0], "MEX-FGR", "USA-ATF")
    routing = RoutingTable(rules=[RoutingRule(senders=["*"], recipients=["USA-ATF", "USA-CBP"])])
    with monkeypatch.context() as rogue:
        # (exchange.crypto re-exports a function named seal: patch the module itself)
        rogue.setattr(
            importlib.import_module("exchange.crypto.seal"), "check_addressing", _no_check
        )
        rogue.setattr("exchange.producers.secure.check_addressing", _no_check)
        rogue.setattr(
            "exchange.producers.secure.allowed_recipients",
            lambda _h, candidates, *, sender: frozenset(candidates) - {sender},
        )
        writer = AuditTopicWriter(
            bootstrap=kafka_bootstrap, agency_id="MEX-FGR", topic_prefix=run.prefix
        )
        with AgencyAudit.open(
            run.audit.log_dir("MEX-FGR"), pki.keys("MEX-FGR"), publisher=writer
        ) as audit, SecureProducer(
            bootstrap=kafka_bootstrap, sender=pki.keys("MEX-FGR"), trust=pki.trust,
            routing=routing, topic_prefix=run.prefix, audit=audit,
        ) as producer:  # fmt: skip
            assert producer.publish(record) == {"USA-ATF", "USA-CBP"}
    witness_all(pki, run.audit)
    entry = decode_entry(_entries(run)[0])
    assert [r.agency_id for r in entry.recipients] == ["USA-ATF", "USA-CBP"]
    code, findings = verify_audit(run, monkeypatch, capsys)
    assert code == 1
    assert _has(findings, "handling_violation", _where(entry.position))
    assert _has(findings, "handling_violation", "MEX-FGR log entry 0")
    assert any("USA-CBP" in f["message"] for f in findings if f["where"].endswith("entry 0"))


def test_missing_receipt_is_found(
    pki: Pki,  # noqa: F811  # the imported fixture, by name
    kafka_bootstrap: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = list(generate_corpus(37, cases=1).records())[:2]
    run = audited_exchange(pki, kafka_bootstrap, tmp_path, {("MEX-FGR", "USA-ATF"): records})
    assert verify_audit(run, monkeypatch, capsys) == (0, [])
    # Someone with admin rights on the bus deletes the receipts USA-ATF sent to MEX-FGR.
    topic = receipts_topic("MEX-FGR", prefix=run.prefix)
    high = read_topic(kafka_bootstrap, topic).watermarks[0][1]
    assert high == 2
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.delete_records([TopicPartition(topic, 0, high)]).values():
        future.result(timeout=30)
    code, findings = verify_audit(run, monkeypatch, capsys)
    assert code == 1
    missing = [f for f in findings if f["kind"] == "missing_receipt"]
    assert len(missing) == 2
    assert all(f["where"].startswith("USA-ATF log entry ") for f in missing)
    assert all("receipts.MEX-FGR" in f["message"] for f in missing)
    assert _kinds(findings) == {"missing_receipt"}
