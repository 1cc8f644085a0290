"""The binational profile for tests: a MEX and a USA cluster linked by MirrorMaker 2.

Started once per test module that uses it (in practice once per session: one module does),
in a temporary ``EXCHANGE_HOME`` on free ports, with TLS, SCRAM and ACLs derived from
:data:`ROUTING`, and stopped when the module ends: its four JVMs must not compete with the
rest of the integration suite for two cores. If it cannot start, the tests that
use it fail with the log tail; they are never skipped. Import the fixture by name::

    from tests.integration.binational_fixtures import binational
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from exchange.broker import find_free_base_port
from exchange.broker.binational import BinationalInfo, ensure_binational, stop_binational
from exchange.deploy import ClientConnection, DeployLayout, client_settings, init_deployment
from exchange.deploy.apply import admin_connection
from exchange.errors import ExchangeError
from exchange.records import RECORD_TYPE_NAMES
from exchange.routing import RoutingRule, RoutingTable
from tests.integration.secure_fixtures import AGENCIES

__all__ = ["ROUTING", "Binational", "binational"]

#: Need-to-know routing: MEX-FGR's seizures go to USA-ATF and MEX-SSPC; USA-ATF's trace
#: requests go to MEX-FGR. USA-CBP is addressed by nothing, so it may read no exchange topic.
ROUTING = RoutingTable(
    rules=[
        RoutingRule(
            senders=["MEX-FGR"], record_types=["seizure"], recipients=["USA-ATF", "MEX-SSPC"]
        ),
        RoutingRule(senders=["USA-ATF"], record_types=["trace-request"], recipients=["MEX-FGR"]),
    ]
)


@dataclass(frozen=True)
class Binational:
    """The running profile: its home (``deploy/`` inside) and how things connect."""

    home: Path
    info: BinationalInfo

    def connect(self, agency: str, *, scram: bool = False) -> ClientConnection:
        """``agency``'s connection to its home cluster."""
        return client_settings(self.home, agency, mechanism="scram" if scram else "mtls")

    def admin(self, country: str) -> dict[str, str]:
        """librdkafka settings of ``country``'s setup principal (a super user)."""
        return {
            k: str(v)
            for k, v in admin_connection(DeployLayout(self.home), self.info.plan, country).items()
        }

    def ca(self, country: str) -> Path:
        """``country``'s transport CA certificate."""
        return DeployLayout(self.home).country(country).ca_cert


@pytest.fixture(scope="module")
def binational(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_libs_cache: Path,
) -> Iterator[Binational]:
    """Both clusters and both mirrors for the module's tests."""
    home = tmp_path_factory.mktemp("binational-home")
    # Six consecutive free ports (find_free_base_port(3) checks 2 * 3 of them), below the
    # ephemeral range (32768+) where a client socket could hold one by chance.
    init_deployment(
        home,
        agencies=AGENCIES,
        routing=ROUTING,
        record_types=RECORD_TYPE_NAMES,
        base_port=find_free_base_port(3, start=29400),
    )
    try:
        info = ensure_binational(home, libs_cache=kafka_libs_cache)
    except ExchangeError as exc:
        stop_binational(home)
        pytest.fail(f"the binational profile did not start: {exc.diagnostics()}")
    try:
        yield Binational(home, info)
    finally:
        stop_binational(home)
