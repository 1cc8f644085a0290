"""The public surface of exchange.crypto is small and pinned; secrets stay out of reprs and logs."""

from __future__ import annotations

import inspect
import logging
import subprocess
import sys
from pathlib import Path

import pytest

import exchange.crypto
from exchange.crypto import Opener, SuiteId, open, seal
from exchange.crypto.dek import DekEpoch, EpochPolicy
from exchange.errors import IntegrityError
from tests.unit.crypto.envelope_world import NOW, PLAINTEXT, World, message

ROOT = Path(__file__).resolve().parents[3]


def test_public_surface_is_pinned() -> None:
    assert sorted(exchange.crypto.__all__) == [
        "AgencyKey", "BatchSealer", "DerivedFrom", "EnvelopeHeader", "EpochPolicy",
        "HandlingSummary", "KeyProvider", "KeyRef", "OpenedEnvelope", "Opener",
        "PendingEnvelope", "ProducerRef", "Sealer", "SuiteId", "TrustResolver",
        "VerifiedEnvelope", "open", "seal", "verify",
    ]  # fmt: skip
    for name in exchange.crypto.__all__:
        assert getattr(exchange.crypto, name) is not None


def test_recipes_take_no_nonce_or_key_argument() -> None:
    for fn in (exchange.crypto.seal, exchange.crypto.open, exchange.crypto.verify):
        params = set(inspect.signature(fn).parameters)
        assert not params & {"nonce", "key", "dek", "salt", "iv"}


def test_hazmat_import_is_banned_outside_the_crypto_package(tmp_path: Path) -> None:
    probe = tmp_path / "exchange_probe.py"
    probe.write_text("from exchange.crypto.hazmat import aead_encrypt\n")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"),
         "--select", "TID251", str(probe)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "TID251" in result.stdout


def test_secrets_stay_out_of_reprs(world: World) -> None:
    blob = seal(PLAINTEXT, sender=world.mex, trust=world.trust, suite=SuiteId.CLASSIC,
                **message(now=NOW))  # fmt: skip
    opened = open(blob, recipient=world.usa, trust=world.trust, now=NOW)
    assert PLAINTEXT.hex() not in repr(opened)
    assert repr(PLAINTEXT) not in repr(opened)
    assert opened.salt.hex() not in repr(opened)
    usa = world.trust.current_key("USA-ATF", SuiteId.CLASSIC, at=NOW)
    epoch = DekEpoch.start(suite=SuiteId.CLASSIC, sender="MEX-FGR", recipients=(usa,), now=NOW,
                           policy=EpochPolicy())  # fmt: skip
    assert epoch._dek.hex() not in repr(epoch)
    assert repr(epoch._dek) not in repr(epoch)


def test_rejections_log_only_the_reason(world: World, caplog: pytest.LogCaptureFixture) -> None:
    blob = seal(PLAINTEXT, sender=world.mex, trust=world.trust, suite=SuiteId.CLASSIC,
                **message(now=NOW))  # fmt: skip
    opener = Opener(world.trust, recipient=world.usa, clock=lambda: NOW)
    opened = opener.open(blob)
    tampered = blob[:-5] + bytes([blob[-5] ^ 1]) + blob[-4:]
    with caplog.at_level(logging.DEBUG), pytest.raises(IntegrityError):
        opener.open(tampered)
    text = caplog.text
    assert "bad_signature" in text
    for secret in (opened.plaintext, opened.salt):
        assert secret.hex() not in text
        assert repr(secret) not in text
