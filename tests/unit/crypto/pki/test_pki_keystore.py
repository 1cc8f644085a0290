"""Private keys at rest and the FileKeyProvider: encryption, modes, secrets kept out of sight."""

from __future__ import annotations

import logging
import pickle
import stat
from pathlib import Path

import pytest

from exchange.crypto.keys import KeyProvider, SuiteId
from exchange.crypto.pki import FileKeyProvider, Passphrase, bootstrap_demo_pki, hpke_suite
from exchange.crypto.pki.keystore import unlock
from exchange.errors import ConfigurationError, IntegrityError, IntegrityReason
from tests.unit.crypto.pki._pki_world import NOW, SECRET, Pki

WRONG = b"tr0ub4dor&3-wrong-passphrase"


def test_passphrase_never_shows_in_repr_str_format_or_pickle() -> None:
    secret = Passphrase(SECRET)
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", "%s" % secret):  # noqa: UP031
        assert SECRET.decode() not in text
        assert "redacted" in text
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        hash(secret)
    assert secret == Passphrase(SECRET)
    assert secret != Passphrase(WRONG)


def test_short_passphrase_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="at least 12") as info:
        Passphrase(b"hunter2")
    assert "hunter2" not in str(info.value)
    with pytest.raises(TypeError):
        Passphrase("a str is not bytes")  # type: ignore[arg-type]  # the misuse under test


def test_wrong_passphrase_gives_clear_error_without_the_passphrase(pki: Pki) -> None:
    provider = FileKeyProvider(pki.layout, "MEX-FGR", Passphrase(WRONG), trust=pki.store())
    key = provider.current_key(SuiteId.CLASSIC, at=NOW)  # public operations need no passphrase
    with pytest.raises(ConfigurationError) as info:
        provider.sign(key.key_id, b"m")
    message = info.value.diagnostics()
    assert "passphrase does not unlock the key store" in message
    assert "EXCHANGE_PKI_PASSPHRASE" in message
    assert WRONG.decode() not in message
    assert SECRET.decode() not in message
    assert WRONG.decode() not in repr(info.value)


def test_private_key_files_are_0600_in_0700_dirs_and_encrypted(demo_pki: Pki) -> None:
    private = demo_pki.layout.private_dir
    files = [p for p in private.rglob("*") if p.is_file()]
    assert len(files) > 20
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for directory in [private, *(p for p in private.rglob("*") if p.is_dir())]:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    for path in private.rglob("*.pem"):
        data = path.read_bytes()
        assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"), path


def test_tampered_keystore_cost_refused(pki: Pki) -> None:
    path = pki.layout.keystore_params
    path.write_text(path.read_text().replace('"log2_n": 10', '"log2_n": 40'))
    with pytest.raises(ConfigurationError, match="out of bounds"):
        unlock(pki.layout, pki.passphrase)


def test_swapped_key_file_detected(pki: Pki) -> None:
    # Copying another generation's key file in place must not silently sign with the wrong key.
    store = pki.store()
    mine = store.current_key("MEX-FGR", SuiteId.CLASSIC, at=NOW).key_id
    theirs = store.current_key("MEX-SSPC", SuiteId.CLASSIC, at=NOW).key_id
    target = pki.layout.agency_key_dir("MEX-FGR", SuiteId.CLASSIC, mine) / "sign-ed25519.pem"
    source = pki.layout.agency_key_dir("MEX-SSPC", SuiteId.CLASSIC, theirs) / "sign-ed25519.pem"
    target.write_bytes(source.read_bytes())
    with pytest.raises(ConfigurationError, match="do not match key id"):
        pki.provider("MEX-FGR").sign(mine, b"m")


@pytest.mark.parametrize("suite", list(SuiteId), ids=lambda s: s.value)
def test_signatures_in_suite_order(demo_pki: Pki, suite: SuiteId) -> None:
    provider = demo_pki.provider("USA-CBP")
    assert isinstance(provider, KeyProvider)
    key = provider.current_key(suite, at=NOW)
    signatures = provider.sign(key.key_id, b"m")
    lengths = [len(s) for s in signatures]
    if suite is SuiteId.CLASSIC:
        assert lengths == [64]
    elif suite is SuiteId.PQ_HYBRID:
        assert lengths == [64, 3309]
    else:
        assert len(lengths) == 1
        assert 8 <= lengths[0] <= 104
        assert signatures[0][0] == 0x30


@pytest.mark.parametrize("suite", list(SuiteId), ids=lambda s: s.value)
def test_hpke_open_failures_are_all_bad_key_wrap(demo_pki: Pki, suite: SuiteId) -> None:
    store = demo_pki.store()
    atf = store.current_key("USA-ATF", suite, at=NOW)
    cbp = store.current_key("USA-CBP", suite, at=NOW)
    sealed = hpke_suite(suite).encrypt(b"d" * 32, atf.kem_key, info=b"info")
    provider = demo_pki.provider("USA-ATF")
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    attempts = {
        "tampered ciphertext": (atf.key_id, bytes(tampered), b"info"),
        "wrong info": (atf.key_id, sealed, b"other"),
        "truncated": (atf.key_id, sealed[:10], b"info"),
        "someone else's key id": (cbp.key_id, sealed, b"info"),
        "malformed key id": ("../../etc", sealed, b"info"),
    }
    for label, (key_id, data, info) in attempts.items():
        with pytest.raises(IntegrityError) as caught:
            provider.hpke_open(key_id, data, info=info)
        assert caught.value.reason is IntegrityReason.BAD_KEY_WRAP, label
    # Addressed to CBP, CBP can open it only under CBP's key.
    assert (
        demo_pki.provider("USA-CBP").hpke_open(
            cbp.key_id, hpke_suite(suite).encrypt(b"x" * 32, cbp.kem_key, info=b"i"), info=b"i"
        )
        == b"x" * 32
    )


def test_passphrase_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = Passphrase(SECRET)
    store = bootstrap_demo_pki(tmp_path, secret, agencies=("MEX-FGR",), now=NOW, scrypt_log2_n=10)
    provider = FileKeyProvider.from_home(tmp_path, "MEX-FGR", secret)
    for suite in SuiteId:
        key = store.current_key("MEX-FGR", suite, at=NOW)
        provider.sign(key.key_id, b"m")
        with pytest.raises(IntegrityError):
            provider.hpke_open(key.key_id, b"garbage", info=b"")
    with pytest.raises(ConfigurationError):
        FileKeyProvider.from_home(tmp_path, "MEX-FGR", Passphrase(WRONG)).sign(key.key_id, b"m")
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert caplog.records, "expected some debug logging to inspect"
    for text in (SECRET.decode(), WRONG.decode(), SECRET.hex(), WRONG.hex()):
        assert text not in logged
    assert SECRET not in (tmp_path / "pki" / "history.jsonl").read_bytes()
