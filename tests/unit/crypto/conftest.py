"""Fixtures for the envelope tests: one world per session (key generation is the slow part)."""

from __future__ import annotations

import pytest

from exchange.crypto import SuiteId
from tests.unit.crypto.envelope_world import Mode, World


@pytest.fixture(scope="session")
def world() -> World:
    return World()


@pytest.fixture(params=list(SuiteId), ids=lambda s: s.value, scope="session")
def suite(request: pytest.FixtureRequest) -> SuiteId:
    return SuiteId(request.param)


@pytest.fixture(params=list(Mode), ids=lambda m: m.value, scope="session")
def mode(request: pytest.FixtureRequest) -> Mode:
    return Mode(request.param)


@pytest.fixture(scope="session")
def envelopes(world: World) -> dict[tuple[SuiteId, Mode], bytes]:
    """One valid envelope per (suite, mode), MEX-FGR -> USA-ATF + USA-CBP."""
    return {(s, m): world.make(s, m) for s in SuiteId for m in Mode}


@pytest.fixture
def envelope(envelopes: dict[tuple[SuiteId, Mode], bytes], suite: SuiteId, mode: Mode) -> bytes:
    return envelopes[(suite, mode)]
