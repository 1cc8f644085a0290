"""Shared constants and the Pki handle of the PKI tests (a uniquely named module, so that
``import`` never picks up another directory's conftest)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from exchange.crypto.pki import FileKeyProvider, Passphrase, PkiLayout, TrustStore

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
