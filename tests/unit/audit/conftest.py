"""Fixtures for the audit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.audit.audit_world import AuditWorld


@pytest.fixture
def world(tmp_path: Path) -> AuditWorld:
    return AuditWorld.create(tmp_path)
