"""Fixtures for the PKI tests: one demo PKI per session, copied for tests that change it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from exchange.crypto.pki import Passphrase, bootstrap_demo_pki
from tests.unit.crypto.pki._pki_world import AGENCIES, NOW, SECRET, Pki


@pytest.fixture(scope="session")
def demo_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Read-only demo PKI: MEX and USA roots for all suites, four agencies. Do not modify."""
    home = tmp_path_factory.mktemp("demo-home")
    bootstrap_demo_pki(home, Passphrase(SECRET), agencies=AGENCIES, now=NOW, scrypt_log2_n=10)
    return Pki(home, Passphrase(SECRET))


@pytest.fixture
def pki(demo_pki: Pki, tmp_path: Path) -> Pki:
    """A private copy of the demo PKI that a test may change (modes are preserved)."""
    home = tmp_path / "home"
    shutil.copytree(demo_pki.home, home)
    return Pki(home, Passphrase(SECRET))
