"""Settings, read from ``EXCHANGE_*`` environment variables in one place.

The CLI builds one :class:`ExchangeSettings` at start-up and passes it (or the parts a
component needs) down; library code never reads the environment itself.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from exchange.routing import check_prefix

__all__ = ["ExchangeSettings"]


class ExchangeSettings(BaseSettings):
    """Process-wide settings.

    Every field maps to ``EXCHANGE_<FIELD>``; for example ``EXCHANGE_HOME=/srv/exchange``.
    """

    model_config = SettingsConfigDict(
        env_prefix="EXCHANGE_",
        extra="forbid",
        frozen=True,
    )

    home: Path = Field(
        default=Path(".exchange"),
        description="Where broker state, logs, keys and sinks live.",
    )
    bootstrap: str | None = Field(
        default=None,
        description="Kafka bootstrap servers (host:port,...). Unset: use the local broker.",
    )
    log_level: str = Field(default="INFO", description="Python logging level.")
    topic_prefix: str = Field(
        default="",
        description="Prefix of every topic name ('' or e.g. 'staging.'), to share a cluster.",
    )
    routing_file: Path | None = Field(
        default=None,
        description="TOML routing table of default recipients [$EXCHANGE_HOME/routing.toml].",
    )
    outbox_dir: Path | None = Field(
        default=None,
        description="Where `exchange publish` keeps each agency's durable outbox of sealed "
        "envelopes not yet acknowledged by the brokers [$EXCHANGE_HOME/outbox].",
    )
    outbox_max_bytes: int = Field(
        default=1 << 30,
        gt=0,
        description="Bytes of undelivered envelopes an outbox holds before publishing refuses "
        "new records (the brokers have been away that long).",
    )
    pki_passphrase: SecretStr | None = Field(
        default=None,
        description="Passphrase that encrypts private keys at rest. Prefer pki_passphrase_file.",
    )
    pki_passphrase_file: Path | None = Field(
        default=None,
        description="File whose first line is the passphrase that encrypts private keys at rest.",
    )

    @field_validator("outbox_dir")
    @classmethod
    def _absolute_outbox(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().resolve()

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        # Broker configs embed this path; a relative path would break once a JVM's cwd differs.
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _one_passphrase_source(self) -> ExchangeSettings:
        if self.pki_passphrase is not None and self.pki_passphrase_file is not None:
            raise ValueError(
                "set EXCHANGE_PKI_PASSPHRASE or EXCHANGE_PKI_PASSPHRASE_FILE, not both"
            )
        return self

    @field_validator("topic_prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        return check_prefix(value)

    def outbox_path(self, agency_id: str) -> Path:
        """``agency_id``'s outbox directory (one publishing process per agency at a time)."""
        return (self.outbox_dir or self.home / "outbox") / agency_id

    @property
    def routing_path(self) -> Path:
        """Where the routing table is read from."""
        return self.routing_file or self.home / "routing.toml"

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"got {value!r}, expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level
