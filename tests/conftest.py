"""Test-session rules shared by unit and integration tests."""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failed test: a skip there hides a missing service."""
    if os.environ.get("CI", "").lower() not in {"1", "true", "yes"}:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == pytest.ExitCode.OK:
        reporter.write_line(  # type: ignore[union-attr]  # reporter is not None when skipped
            f"CI: {len(skipped)} test(s) skipped; a skipped test fails the run", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
