"""Where ``exchange deploy init`` puts each country's transport material under ``$EXCHANGE_HOME``.

::

    $EXCHANGE_HOME/deploy/
    ├── plan.json                    countries, ports, agencies, topic prefix, ACL plan (public)
    └── <CTY>/                       MEX, USA: one sovereign cluster each
        ├── ca/ca.pem                the country's transport CA certificate (truststore)
        ├── ca/ca.key                its private key (0600; offline/HSM in production)
        ├── broker/broker.pem        broker keystore: chain + unencrypted PKCS#8 key (0600)
        ├── broker/security.properties   TLS/SASL/ACL settings merged into server.properties
        ├── admin/                   the setup principal (admin.<cty>): cert, key (0600)
        ├── mirror/                  MirrorMaker 2 writing into this country's cluster:
        │   ├── local.pem            keystore toward this cluster (issued by this CA; 0600)
        │   ├── remote.pem           keystore toward the other cluster (issued by THAT CA; 0600)
        │   ├── remote-ca.pem        the other country's transport CA certificate
        │   └── mm2.properties       rendered by exchange.deploy.config
        └── clients/<AGENCY>/        per agency of this country:
            ├── client.pem, client.key (0600)   mTLS identity, CN = agency id
            └── scram.password (0600)           SCRAM-SHA-512 password

Every private key and password is a file of mode 0600 in directories of mode 0700; nothing
secret is ever put on a command line or in ``plan.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["COUNTRIES", "ClientFiles", "CountryLayout", "DeployLayout"]

#: The two sovereign clusters of the binational deployment.
COUNTRIES = ("MEX", "USA")


@dataclass(frozen=True)
class ClientFiles:
    """One mTLS identity: certificate chain and private key."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class CountryLayout:
    """Paths of one country's transport material."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca" / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca" / "ca.key"

    @property
    def broker_keystore(self) -> Path:
        return self.root / "broker" / "broker.pem"

    @property
    def broker_properties(self) -> Path:
        return self.root / "broker" / "security.properties"

    @property
    def admin(self) -> ClientFiles:
        return ClientFiles(self.root / "admin" / "admin.pem", self.root / "admin" / "admin.key")

    @property
    def mirror_dir(self) -> Path:
        return self.root / "mirror"

    @property
    def mirror_local_keystore(self) -> Path:
        return self.mirror_dir / "local.pem"

    @property
    def mirror_remote_keystore(self) -> Path:
        return self.mirror_dir / "remote.pem"

    @property
    def mirror_remote_ca(self) -> Path:
        return self.mirror_dir / "remote-ca.pem"

    @property
    def mirror_properties(self) -> Path:
        return self.mirror_dir / "mm2.properties"

    def client(self, agency_id: str) -> ClientFiles:
        """The mTLS identity files of ``agency_id``."""
        base = self.root / "clients" / agency_id
        return ClientFiles(base / "client.pem", base / "client.key")

    def scram_password(self, agency_id: str) -> Path:
        """The file holding ``agency_id``'s SCRAM-SHA-512 password."""
        return self.root / "clients" / agency_id / "scram.password"


@dataclass(frozen=True)
class DeployLayout:
    """Paths of the deployment under one ``EXCHANGE_HOME`` (made absolute: configs embed it)."""

    home: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", self.home.expanduser().resolve())

    @property
    def root(self) -> Path:
        return self.home / "deploy"

    @property
    def plan_file(self) -> Path:
        return self.root / "plan.json"

    def country(self, country: str) -> CountryLayout:
        """The layout of ``country`` (MEX or USA)."""
        if country not in COUNTRIES:
            raise ValueError(f"got country {country!r}, expected one of {', '.join(COUNTRIES)}")
        return CountryLayout(self.root / country)
