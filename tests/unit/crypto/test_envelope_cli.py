"""`exchange envelope` end to end with the real PKI: agencies of both countries exchange every
record family with every suite; refusals are one line with exit code 4."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from exchange.cli import cli
from exchange.cli.envelope import envelope
from exchange.crypto import HandlingSummary, SuiteId, seal
from exchange.crypto.pki import (
    FileKeyProvider,
    Passphrase,
    PkiLayout,
    TrustStore,
    bootstrap_demo_pki,
    revoke_key,
)
from exchange.records import RECORD_TYPE_NAMES, record_type
from exchange.records.sample import generate

SECRET = "correct horse battery staple"  # noqa: S105 - a test key store's passphrase
Invoke = Callable[..., Result]
PAIRS = [("MEX-FGR", "USA-ATF"), ("USA-ATF", "MEX-FGR")]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("exchange-home")
    bootstrap_demo_pki(home, Passphrase(SECRET.encode()), scrypt_log2_n=10)
    return home


@pytest.fixture
def run(home: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setitem(cli.commands, "envelope", envelope)  # registered by exchange.cli
    runner = CliRunner()
    env = {"EXCHANGE_HOME": str(home), "EXCHANGE_PKI_PASSPHRASE": SECRET}

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, ["envelope", *args], env=env, catch_exceptions=False)

    return invoke


def _record_file(tmp: Path, type_name: str, sender: str, counterpart: str) -> Path:
    (record,) = generate(type_name, count=1, seed=11, originator=sender)
    data = json.loads(record_type(type_name).to_json(record))
    agencies = data["handling"]["releasableToAgencies"]
    if agencies is not None and counterpart not in agencies:
        data["handling"]["releasableToAgencies"] = sorted([*agencies, counterpart])
    path = tmp / f"{type_name}-{sender}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("suite", [s.value for s in SuiteId])
@pytest.mark.parametrize(("sender", "receiver"), PAIRS, ids=["mex-to-usa", "usa-to-mex"])
def test_agencies_exchange_every_record_family(
    run: Invoke, tmp_path: Path, suite: str, sender: str, receiver: str
) -> None:
    invoke = run
    for type_name in RECORD_TYPE_NAMES:
        rec = _record_file(tmp_path, type_name, sender, receiver)
        out = tmp_path / f"{type_name}.env"
        sealed = invoke("seal", "--as", sender, "--type", type_name, "--file", str(rec),
                        "--out", str(out), "--suite", suite, "--to", receiver)  # fmt: skip
        assert sealed.exit_code == 0, sealed.output
        verified = invoke("verify", str(out))
        assert verified.exit_code == 0, verified.output
        header = json.loads(verified.output)
        assert header["suite"] == suite
        assert header["sender"]["agencyId"] == sender
        assert [r["agencyId"] for r in header["recipients"]] == [receiver]
        assert header["recordType"] == type_name
        opened = invoke("open", str(out), "--as", receiver)
        assert opened.exit_code == 0, opened.output
        assert json.loads(opened.output) == json.loads(rec.read_text())


def test_default_recipients_follow_the_handling(run: Invoke, tmp_path: Path) -> None:
    rec = _record_file(tmp_path, "seizure", "MEX-FGR", "USA-ATF")
    out = tmp_path / "env.bin"
    result = run(
        "seal", "--as", "MEX-FGR", "--type", "seizure", "--file", str(rec), "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    header = json.loads(run("verify", str(out)).output)
    handling = json.loads(rec.read_text())["handling"]
    for r in header["recipients"]:
        assert r["agencyId"].split("-")[0] in handling["releasableTo"]
    assert "MEX-FGR" not in [r["agencyId"] for r in header["recipients"]]
    assert header["topic"] == "xchg.MEX-FGR.crossborder.seizure"


def test_unaddressed_agency_is_refused_with_one_line(run: Invoke, tmp_path: Path) -> None:
    rec = _record_file(tmp_path, "seizure", "MEX-FGR", "USA-ATF")
    out = tmp_path / "env.bin"
    run("seal", "--as", "MEX-FGR", "--type", "seizure", "--file", str(rec), "--out", str(out),
        "--to", "USA-ATF")  # fmt: skip
    result = run("open", str(out), "--as", "USA-CBP")
    assert result.exit_code == 4
    assert result.output.strip().splitlines() == ["Error: envelope rejected: not_a_recipient"]


def test_tampered_envelope_fails_verify(run: Invoke, tmp_path: Path) -> None:
    rec = _record_file(tmp_path, "ballistic", "USA-ATF", "MEX-FGR")
    out = tmp_path / "env.bin"
    run("seal", "--as", "USA-ATF", "--type", "ballistic", "--file", str(rec), "--out", str(out))
    blob = bytearray(out.read_bytes())
    blob[len(blob) // 2] ^= 1
    out.write_bytes(bytes(blob))
    result = run("verify", str(out))
    assert result.exit_code == 4
    assert "envelope rejected: bad_signature" in result.output


def test_widening_recipients_with_to_is_refused(run: Invoke, tmp_path: Path) -> None:
    rec = tmp_path / "mex-only.json"
    data = json.loads(_record_file(tmp_path, "seizure", "MEX-FGR", "MEX-SSPC").read_text())
    data["handling"]["releasableTo"] = ["MEX"]
    data["handling"]["releasableToAgencies"] = None
    rec.write_text(json.dumps(data))
    result = run("seal", "--as", "MEX-FGR", "--type", "seizure", "--file", str(rec),
                 "--out", str(tmp_path / "x.bin"), "--to", "USA-ATF")  # fmt: skip
    assert result.exit_code == 4
    assert "does not allow USA-ATF" in result.output
    assert not (tmp_path / "x.bin").exists()


def test_revoked_sender_key_fails_verify(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = tmp_path / "home"
    shutil.copytree(home, private)
    monkeypatch.setitem(cli.commands, "envelope", envelope)
    env = {"EXCHANGE_HOME": str(private), "EXCHANGE_PKI_PASSPHRASE": SECRET}
    runner = CliRunner()
    rec = _record_file(tmp_path, "seizure", "MEX-FGR", "USA-ATF")
    out = tmp_path / "env.bin"
    args = ["seal", "--as", "MEX-FGR", "--type", "seizure", "--file", str(rec), "--out", str(out)]
    sealed = runner.invoke(cli, ["envelope", *args, "--suite", "classic"], env=env)
    assert sealed.exit_code == 0, sealed.output
    key_id = json.loads(runner.invoke(cli, ["envelope", "verify", str(out)], env=env).output)[
        "sender"
    ]["keyId"]
    revoke_key(private, "MEX-FGR", key_id, Passphrase(SECRET.encode()))
    result = runner.invoke(cli, ["envelope", "verify", str(out)], env=env)
    assert result.exit_code == 4
    assert "revoked_key" in result.output


def test_missing_pki_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.commands, "envelope", envelope)
    (tmp_path / "env.bin").write_bytes(b"XE\x01")
    result = CliRunner().invoke(cli, ["envelope", "verify", str(tmp_path / "env.bin")],
                                env={"EXCHANGE_HOME": str(tmp_path / "nowhere")})  # fmt: skip
    assert result.exit_code == 2
    assert "no PKI under" in result.output


def test_invalid_record_file_is_bad_input(run: Invoke, tmp_path: Path) -> None:
    rec = tmp_path / "bad.json"
    rec.write_text('{"meta": {}}')
    result = run("seal", "--as", "MEX-FGR", "--type", "seizure", "--file", str(rec),
                 "--out", str(tmp_path / "x.bin"))  # fmt: skip
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1


def test_auditor_verifies_without_any_passphrase(home: Path, run: Invoke, tmp_path: Path) -> None:
    rec = _record_file(tmp_path, "trace-request", "MEX-FGR", "USA-ATF")
    out = tmp_path / "env.bin"
    assert run("seal", "--as", "MEX-FGR", "--type", "trace-request", "--file", str(rec),
               "--out", str(out), "--to", "USA-ATF").exit_code == 0  # fmt: skip
    no_secret = {"EXCHANGE_HOME": str(home), "EXCHANGE_PKI_PASSPHRASE": None}
    result = CliRunner().invoke(cli, ["envelope", "verify", str(out)], env=no_secret)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["verified"] is True


def test_authentic_but_undecodable_record_is_refused(
    run: Invoke, home: Path, tmp_path: Path
) -> None:
    trust = TrustStore.load(home)
    sender = FileKeyProvider(PkiLayout(home), "MEX-FGR", Passphrase(SECRET.encode()), trust=trust)
    handling = HandlingSummary(tlp="AMBER", releasable_to=("MEX", "USA"), originator="MEX-FGR")
    blob = seal(b"\x01not avro", sender=sender, trust=trust, recipients=["USA-ATF"],
                suite=SuiteId.CLASSIC, record_type="seizure",
                schema_fingerprint=record_type("seizure").fingerprint, handling=handling,
                topic="xchg.MEX-FGR.crossborder.seizure")  # fmt: skip
    out = tmp_path / "env.bin"
    out.write_bytes(blob)
    assert run("verify", str(out)).exit_code == 0  # authentic ...
    result = run("open", str(out), "--as", "USA-ATF")  # ... but not a seizure record
    assert result.exit_code == 4
    assert result.output.strip() == "Error: envelope rejected: schema_mismatch"
