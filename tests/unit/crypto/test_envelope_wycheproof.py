"""Wycheproof AES-GCM vectors (AES-256, 96-bit IV, 128-bit tag) through the envelope's AEAD
helpers: valid cases encrypt to the expected bytes; every invalid case fails closed (None),
never returning partial plaintext (STYLE.md §9)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from exchange.crypto.hazmat import aead_decrypt, aead_encrypt

FILE = (
    Path(__file__).resolve().parents[2] / "vectors" / "wycheproof" / "aes_gcm_256_iv96_tag128.json"
)
CASES: list[dict[str, Any]] = json.loads(FILE.read_text())["tests"]


@pytest.mark.parametrize("case", CASES, ids=[f"tc{c['tcId']}" for c in CASES])
def test_wycheproof_aes_256_gcm(case: dict[str, Any]) -> None:
    key, iv, aad, msg, ct, tag = (
        bytes.fromhex(case[k]) for k in ("key", "iv", "aad", "msg", "ct", "tag")
    )
    if case["result"] == "valid":
        assert aead_encrypt(key, iv, msg, aad) == ct + tag
        assert aead_decrypt(key, iv, ct + tag, aad) == msg
    else:
        assert aead_decrypt(key, iv, ct + tag, aad) is None


def test_selection_has_both_outcomes() -> None:
    assert {c["result"] for c in CASES} == {"valid", "invalid"}
    assert len(CASES) >= 60
