"""The audit trail on the real broker: after ``exchange demo``, ``exchange audit verify``
passes, from the topics and from an exported bundle; ``prove`` gives a proof that verifies;
nothing in the trail carries record content."""

from __future__ import annotations

import base64
import json
import re
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from exchange.audit import SignedCheckpoint, decode_entry, hash_leaf, verify_inclusion
from exchange.audit.storage import scan_frames
from exchange.audit_bus import read_topic
from exchange.cli import cli, main
from exchange.records import ExchangeRecord
from exchange.records.sample import generate_corpus

SEED, CASES = 5, 2
_UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_CODE = re.compile(r"\A[A-Z0-9_-]+\Z")  # agency ids, country codes, enum symbols


@pytest.fixture(scope="module")
def demo_home(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``exchange demo`` once, with its own home and topic prefix."""
    home = tmp_path_factory.mktemp("audit-demo")
    prefix = f"demo-{uuid.uuid4().hex[:8]}."
    env = {"EXCHANGE_HOME": str(home), "EXCHANGE_BOOTSTRAP": kafka_bootstrap,
           "EXCHANGE_TOPIC_PREFIX": prefix}  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        result = CliRunner().invoke(cli, ["demo", "--cases", str(CASES), "--seed", str(SEED)])
    assert result.exit_code == 0, result.output
    assert "exchange audit verify" in result.output
    return home, prefix


@pytest.fixture(name="demo_env")
def demo_env_fixture(
    demo_home: tuple[Path, str], kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> Path:
    home, prefix = demo_home
    monkeypatch.setenv("EXCHANGE_HOME", str(home))
    monkeypatch.setenv("EXCHANGE_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("EXCHANGE_TOPIC_PREFIX", prefix)
    return home


def _verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(["audit", "verify", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def test_audit_verify_passes_after_the_demo(
    demo_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = _verify(capsys)
    assert result["findings"] == []
    assert code == 0
    stats = result["stats"]
    assert isinstance(stats, dict)
    # Both countries' agencies kept logs; every delivery has a receipt on the bus.
    assert stats["logs"] >= 6
    assert stats["envelopes"] > 0
    assert stats["receipts"] >= stats["envelopes"]
    # Every log ends in a checkpoint cosigned by two witnesses of the other country.
    for log in sorted((demo_env / "audit" / "logs").iterdir()):
        notes = sorted((log / "checkpoints").glob("*.note"))
        assert notes, log
        signers = [s.name for s in SignedCheckpoint.parse(notes[-1].read_bytes()).note.signatures]
        other = "USA" if log.name.startswith("MEX") else "MEX"
        assert sum(f"/key/{other}-" in n for n in signers) >= 2, (log.name, signers)


@pytest.mark.usefixtures("demo_env")
def test_exported_bundle_verifies_offline_and_a_tampered_bundle_does_not(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle = tmp_path / "bundle"
    assert main(["audit", "export", "--out", str(bundle)]) == 0
    assert not list(bundle.rglob("private")), "the bundle holds no private key material"
    monkeypatch.setenv("EXCHANGE_BOOTSTRAP", "127.0.0.1:1")  # no broker: offline only
    code, result = _verify(capsys, "--export", str(bundle))
    assert (code, result["findings"]) == (0, [])
    receipts = bundle / "bus" / "receipts.json"
    receipts.write_text(receipts.read_text(encoding="utf-8").replace("A", "B", 1), "utf-8")
    code, result = _verify(capsys, "--export", str(bundle))
    assert code == 1
    findings = result["findings"]
    assert isinstance(findings, list)
    assert {"kind": "bundle_mismatch", "where": "bus/receipts.json",
            "message": "differs from the manifest"} in findings  # fmt: skip


def test_audit_prove_prints_a_proof_that_verifies_against_its_checkpoint(
    demo_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = demo_env / "audit" / "logs" / "MEX-FGR"
    entries = [decode_entry(e) for e in scan_frames((log / "entries.bin").read_bytes()).entries]
    message_id = next(e.message_id for e in entries if e.kind.value == "publish")
    capsys.readouterr()
    assert main(["audit", "prove", "--message-id", str(message_id)]) == 0
    proof = json.loads(capsys.readouterr().out)
    signed = SignedCheckpoint.parse(proof["checkpoint"].encode())
    leaf = hash_leaf(base64.b64decode(proof["entry"]))
    path = [base64.b64decode(h) for h in proof["proof"]]
    assert decode_entry(base64.b64decode(proof["entry"])).message_id == message_id
    cp = signed.checkpoint
    assert verify_inclusion(leaf, proof["index"], cp.size, cp.root, path)
    assert not verify_inclusion(leaf, proof["index"] + 1, cp.size, cp.root, path)


def _content_strings(records: tuple[ExchangeRecord, ...]) -> set[str]:
    """Free-text and personal values of the records (names, descriptions, places...)."""
    out: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif (
            isinstance(value, str)
            and len(value) >= 6
            and not (_UUID.match(value) or _CODE.match(value))
        ):
            out.add(value)

    for record in records:
        walk(json.loads(record.model_dump_json()))
    return out


def test_the_audit_trail_holds_no_record_content(
    demo_env: Path, demo_home: tuple[Path, str], kafka_bootstrap: str
) -> None:
    secrets = _content_strings(generate_corpus(SEED, cases=CASES).records())
    assert len(secrets) > 20  # the check below would be vacuous without them
    blobs = [p.read_bytes() for p in (demo_env / "audit").rglob("*") if p.is_file()]
    _, prefix = demo_home
    for agency in ("MEX-FGR", "USA-ATF", "USA-CBP"):
        for topic in (f"{prefix}audit.{agency}", f"{prefix}receipts.{agency}"):
            blobs += [m.value for m in read_topic(kafka_bootstrap, topic).messages]
    assert len(blobs) > 20
    leaks = {s for s in secrets for b in blobs if s.encode() in b}
    assert leaks == set()
