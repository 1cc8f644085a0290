"""A real PostgreSQL server for integration tests, started by ``scripts/postgres``.

Wire the session fixture into a conftest with ``from postgres import postgres_dsn``. It uses
the server named by ``EXCHANGE_TEST_POSTGRES_DSN`` (a ``postgresql://`` URL with rights to
create databases) when set; otherwise it starts a throwaway cluster on a free loopback port,
installing PostgreSQL from Debian first when no ``initdb`` is found, and stops and deletes it
at the end of the session. When the server cannot be had, every test that needs it fails:
a skip would hide a missing service in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from exchange.sinks import redact_dsn

__all__ = [
    "ENV_DSN",
    "SCRIPT",
    "postgres_dsn",
    "scratch_database",
    "start_postgres",
    "stop_postgres",
]

ENV_DSN = "EXCHANGE_TEST_POSTGRES_DSN"
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgres"
# apt-get on a fresh machine plus initdb; a warm start takes about a second.
_START_TIMEOUT_S = 600


def start_postgres(directory: Path) -> str:
    """Start a throwaway cluster under ``directory`` and return its admin DSN.

    Raises:
        RuntimeError: the script failed (its stderr is in the message).
    """
    done = subprocess.run(
        ["bash", str(SCRIPT), "start", str(directory)],
        capture_output=True,
        text=True,
        timeout=_START_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/postgres start failed ({done.returncode}):\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def stop_postgres(directory: Path) -> None:
    """Stop the cluster under ``directory`` (a no-op when it is not running)."""
    subprocess.run(["bash", str(SCRIPT), "stop", str(directory)], check=True, timeout=120)


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """Admin DSN (``postgresql://`` URL) of a running PostgreSQL server for the session."""
    external = os.environ.get(ENV_DSN)
    if external:
        yield external
        return
    # Not under pytest's tmp_path: its parents are 0700 root, and the server runs as another
    # user when the tests run as root.
    directory = Path(tempfile.mkdtemp(prefix="exchange-pg-"))
    try:
        try:
            dsn = start_postgres(directory)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            pytest.fail(f"PostgreSQL could not be started: {exc}", pytrace=False)
        yield dsn
    finally:
        stop_postgres(directory)
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def scratch_database(admin_dsn: str) -> Iterator[str]:
    """A new empty database for one test; yields its URL and drops it afterwards.

    Raises:
        psycopg.Error: the server refused to create the database.
    """
    name = f"sink_test_{uuid.uuid4().hex[:16]}"
    url = urlsplit(admin_dsn)
    if url.scheme not in {"postgresql", "postgres"}:
        raise ValueError(f"{ENV_DSN}: got {redact_dsn(admin_dsn)!r}, expected a postgresql:// URL")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            # FORCE: a child the test SIGKILLed may still hold a backend for a moment.
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
