"""The append-only history of trust changes, and the layout's path hygiene."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exchange.crypto.keys import SuiteId
from exchange.crypto.pki import (
    PkiLayout,
    init_country,
    read_history,
    revoke_key,
    rotate_agency,
    verify_history,
)
from exchange.crypto.pki.keystore import DEFAULT_SCRYPT_LOG2_N
from exchange.crypto.pki.passphrase import Passphrase
from tests.unit.crypto.pki._pki_world import NOW, SECRET, Pki


def test_history_records_every_change_without_secrets(pki: Pki) -> None:
    (new,) = rotate_agency(pki.home, "MEX-FGR", pki.passphrase, suites=["cnsa"], now=NOW)
    revoke_key(pki.home, "MEX-FGR", new.key_id, pki.passphrase, now=NOW)
    events = read_history(pki.layout)
    kinds = [e["event"] for e in events]
    assert kinds.count("init-country") == 6
    assert kinds.count("enroll") == 4 * 3
    assert kinds[-2:] == ["rotate", "revoke"]
    assert events[-2]["key_id"] == new.key_id
    assert events[-1]["reason"] == "keyCompromise"
    raw = pki.layout.history.read_bytes()
    assert SECRET not in raw
    assert b"PRIVATE KEY" not in raw
    assert verify_history(pki.layout)


@pytest.mark.parametrize("attack", ["edit", "delete", "reorder"])
def test_history_tampering_detected(pki: Pki, attack: str) -> None:
    lines = pki.layout.history.read_bytes().splitlines()
    if attack == "edit":
        record = json.loads(lines[3])
        record["suite"] = "classic" if record["suite"] != "classic" else "cnsa"
        lines[3] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    elif attack == "delete":
        del lines[2]
    else:
        lines[1], lines[2] = lines[2], lines[1]
    pki.layout.history.write_bytes(b"\n".join(lines) + b"\n")
    assert not verify_history(pki.layout)


@pytest.mark.parametrize("agency", ["../MEX-FGR", "MEX-FGR/../../x", "MEX-FGR\x00"])
def test_layout_refuses_path_traversal(agency: str, tmp_path: Path) -> None:
    layout = PkiLayout(tmp_path)
    with pytest.raises(ValueError, match="agency id"):
        layout.agency_cert_dir(agency, SuiteId.CLASSIC)
    with pytest.raises(ValueError, match="key id"):
        layout.agency_key_dir("MEX-FGR", SuiteId.CLASSIC, "../" + "0" * 29)


def test_default_scrypt_cost_is_memory_hard(tmp_path: Path) -> None:
    home = tmp_path
    init_country(home, "USA", Passphrase(SECRET), suites=["classic"], now=NOW)
    params = json.loads(PkiLayout(home).keystore_params.read_text())
    assert DEFAULT_SCRYPT_LOG2_N >= 16
    assert params["log2_n"] == DEFAULT_SCRYPT_LOG2_N
    assert params["kdf"] == "scrypt"
