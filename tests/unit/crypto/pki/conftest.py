"""Fixtures for the PKI tests: one demo PKI per session, copied for tests that change it."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from exchange.crypto.pki import (
    FileKeyProvider,
    Passphrase,
    PkiLayout,
    TrustStore,
    bootstrap_demo_pki,
)

#: Every test runs at fixed times: the PKI is created at NOW and agency keys last 365 days.
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
SECRET = b"correct horse battery staple"
AGENCIES = ("MEX-FGR", "MEX-SSPC", "USA-ATF", "USA-CBP")


@dataclass(frozen=True)
class Pki:
    home: Path
    passphrase: Passphrase

    @property
    def layout(self) -> PkiLayout:
        return PkiLayout(self.home)

    def store(self) -> TrustStore:
        return TrustStore.load(self.home)

    def provider(self, agency_id: str) -> FileKeyProvider:
        return FileKeyProvider(self.layout, agency_id, self.passphrase, trust=self.store())


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
