"""Fixtures of the hostile-input tests: one envelope world per session (keys are the slow part)."""

from __future__ import annotations

import pytest

from exchange.crypto import SuiteId
from tests.unit.crypto.envelope_world import Mode, World


@pytest.fixture(scope="session")
def world() -> World:
    return World()


@pytest.fixture(scope="session")
def envelopes(world: World) -> dict[tuple[SuiteId, Mode], bytes]:
    """One valid envelope per (suite, mode), MEX-FGR -> USA-ATF + USA-CBP."""
    return {(s, m): world.make(s, m) for s in SuiteId for m in Mode}
