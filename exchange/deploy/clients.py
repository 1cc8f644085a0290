"""How an agency's producers and consumers connect to its home cluster of the deployment.

An agency connects only to its own country's cluster; what other countries send it arrives
there through MirrorMaker 2. Two ways to authenticate, both over TLS 1.3 that verifies the
broker against the country's transport CA and its hostname (127.0.0.1 is in the SAN):

* ``mtls`` (default): the agency's client certificate, CN = agency id;
* ``scram``: SCRAM-SHA-512 with the password from ``scram.password``.

Both map to the principal ``User:<agency id>``, so the same ACLs apply.

Example::

    conn = client_settings(Path(".exchange"), "MEX-FGR")
    producer = SecureProducer(bootstrap=conn.bootstrap, config_overrides=conn.config, ...)
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from exchange.deploy.layout import COUNTRIES, DeployLayout
from exchange.deploy.plan import DeploymentPlan
from exchange.errors import BrokerError, ConfigurationError

__all__ = ["AuthenticationFailedError", "ClientConnection", "client_settings", "probe"]

Mechanism = Literal["mtls", "scram"]

# librdkafka reports a refused password or an unverifiable broker with these codes ...
_AUTH_CODES = frozenset({KafkaError._AUTHENTICATION, KafkaError._SSL})
# ... but a client certificate the broker refuses only as a transport failure: in TLS 1.3
# the client's handshake is over before the broker's alert ("bad certificate",
# "certificate required") arrives on the first read.
_TLS_ALERT = re.compile(r"alert|certificate", re.IGNORECASE)


class AuthenticationFailedError(BrokerError):
    """The broker refused the client's certificate or password (not retriable)."""

    retriable = False


@dataclass(frozen=True)
class ClientConnection:
    """Where and how one agency connects: bootstrap plus librdkafka security settings.

    ``config`` may hold ``sasl.password``; it is kept out of ``repr``.
    """

    agency_id: str
    bootstrap: str
    config: dict[str, str] = field(repr=False)

    def __repr__(self) -> str:
        mech = self.config.get("security.protocol", "?")
        return (
            f"ClientConnection({self.agency_id!r}, {self.bootstrap!r}, {mech}, secrets=<redacted>)"
        )


def client_settings(
    home: Path, agency_id: str, *, mechanism: Mechanism = "mtls"
) -> ClientConnection:
    """The connection of ``agency_id`` to its home cluster in the deployment under ``home``.

    Args:
        home: ``$EXCHANGE_HOME`` holding ``deploy/`` (see ``exchange deploy init``).
        agency_id: The agency, e.g. ``MEX-FGR``; its country picks the cluster.
        mechanism: ``mtls`` (client certificate) or ``scram`` (SCRAM-SHA-512).

    Returns:
        The bootstrap address and the settings to pass as ``config_overrides``.

    Raises:
        ConfigurationError: no deployment, or no credentials for ``agency_id``.
    """
    layout = DeployLayout(home)
    plan = DeploymentPlan.load(layout.plan_file)
    country = agency_id.split("-", 1)[0]
    if country not in COUNTRIES or agency_id not in plan.agencies:
        raise ConfigurationError(
            f"{agency_id} has no transport credentials in {layout.root}; add it to the "
            "agencies and rerun `exchange deploy init`"
        )
    here = layout.country(country)
    ports = plan.ports[country]
    tls = {"ssl.ca.location": str(here.ca_cert), "ssl.endpoint.identification.algorithm": "https"}
    if mechanism == "mtls":
        files = here.client(agency_id)
        config = {
            "security.protocol": "SSL",
            "ssl.certificate.location": str(files.cert),
            "ssl.key.location": str(files.key),
            **tls,
        }
        return ClientConnection(agency_id, ports.ssl_bootstrap, config)
    try:
        password = here.scram_password(agency_id).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the SCRAM password of {agency_id}: {exc.strerror}"
        ) from None
    config = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": agency_id,
        "sasl.password": password,
        **tls,
    }
    return ClientConnection(agency_id, ports.sasl_bootstrap, config)


def probe(bootstrap: str, config: dict[str, str], *, timeout: float = 15.0) -> list[str]:
    """Connect with ``config`` and list the topics the principal may describe.

    Returns:
        The visible topic names.

    Raises:
        AuthenticationFailedError: the broker refused the certificate or the password.
        BrokerError: no broker answered within ``timeout``.
    """
    errors: list[KafkaError] = []
    settings: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        **config,
        "error_cb": errors.append,
        "log_level": 0,  # the error callback carries what matters; no stderr noise
    }
    admin = AdminClient(settings)
    deadline = time.monotonic() + timeout
    while True:
        # Short metadata requests, so a refused handshake is reported at once instead of
        # after the whole timeout of retries.
        try:
            return sorted(admin.list_topics(timeout=min(1.0, timeout)).topics)
        except KafkaException as exc:
            admin.poll(0.1)  # error callbacks run only when the client is polled
            failed = _auth_failure(errors)
            if failed is not None:
                raise _auth_error(bootstrap, failed) from None
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"no broker at {bootstrap} answered within {timeout:g} s: {exc}"
                ) from None


def _auth_failure(errors: list[KafkaError]) -> KafkaError | None:
    for error in errors:
        if error.code() in _AUTH_CODES:
            return error
        if error.code() == KafkaError._TRANSPORT and _TLS_ALERT.search(error.str()):
            return error
    return None


def _auth_error(bootstrap: str, error: KafkaError) -> AuthenticationFailedError:
    # librdkafka's text names the cause (certificate required, invalid credentials) and
    # never echoes the password.
    return AuthenticationFailedError(
        f"authentication to {bootstrap} failed: {error.str()} ({error.name()})"
    )
