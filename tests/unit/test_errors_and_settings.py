from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from exchange.errors import (
    BrokerError,
    DataError,
    InfrastructureError,
    IntegrityError,
    IntegrityReason,
    ToolMissingError,
)
from exchange.settings import ExchangeSettings


@pytest.mark.parametrize("reason", list(IntegrityReason))
def test_integrity_error_is_opaque_whatever_the_reason(reason: IntegrityReason) -> None:
    error = IntegrityError(reason)
    assert error.reason is reason
    assert reason.value not in str(error)
    assert reason.value not in repr(error)
    assert str(error) == str(IntegrityError(IntegrityReason.MALFORMED))


def test_error_branches_tell_callers_whether_to_retry() -> None:
    assert isinstance(IntegrityError(IntegrityReason.REPLAY), DataError)
    assert IntegrityError(IntegrityReason.REPLAY).retriable is False
    assert isinstance(BrokerError("x"), InfrastructureError)
    assert BrokerError("x").retriable is True
    assert ToolMissingError("java").retriable is False


def test_settings_read_exchange_prefixed_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EXCHANGE_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("EXCHANGE_BOOTSTRAP", "127.0.0.1:9")
    settings = ExchangeSettings()
    assert settings.home == tmp_path / "h"
    assert settings.bootstrap == "127.0.0.1:9"


def test_passphrase_never_shows_in_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_PKI_PASSPHRASE", "correct horse battery staple")
    settings = ExchangeSettings()
    assert "correct horse" not in repr(settings)
    assert "correct horse" not in str(settings.model_dump())


def test_two_passphrase_sources_are_contradictory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EXCHANGE_PKI_PASSPHRASE", "p")
    monkeypatch.setenv("EXCHANGE_PKI_PASSPHRASE_FILE", str(tmp_path / "p"))
    with pytest.raises(ValidationError, match="not both"):
        ExchangeSettings()


def test_unknown_log_level_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_LOG_LEVEL", "LOUD")
    with pytest.raises(ValidationError, match="LOUD"):
        ExchangeSettings()
