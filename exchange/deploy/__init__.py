"""The binational deployment: transport security of each country's Kafka cluster.

``exchange deploy init`` writes, under ``$EXCHANGE_HOME/deploy``, a transport CA per country,
broker TLS material, an mTLS certificate and a SCRAM-SHA-512 password per agency, the broker
security settings, the MirrorMaker 2 configurations and an ACL plan derived from the routing
table; ``exchange broker up --profile binational`` runs it (:mod:`exchange.broker.binational`).
Like :mod:`exchange.broker`, this is tooling: the producer and consumer libraries never
import it; they take the settings :func:`client_settings` returns as ``config_overrides``.

Example::

    from pathlib import Path
    from exchange.deploy import client_settings

    conn = client_settings(Path(".exchange"), "USA-ATF")           # mTLS
    SecureConsumer(bootstrap=conn.bootstrap, config_overrides=conn.config, ...)
"""

from __future__ import annotations

from exchange.deploy.acls import AclEntry, cluster_acls, mirror_principal, mirrored_topics
from exchange.deploy.apply import admin_connection, apply_country
from exchange.deploy.clients import (
    AuthenticationFailedError,
    ClientConnection,
    client_settings,
    probe,
)
from exchange.deploy.init import init_deployment, mirror_topic_patterns
from exchange.deploy.layout import COUNTRIES, DeployLayout
from exchange.deploy.plan import DEFAULT_DEPLOY_BASE_PORT, DeploymentPlan

__all__ = [
    "COUNTRIES",
    "DEFAULT_DEPLOY_BASE_PORT",
    "AclEntry",
    "AuthenticationFailedError",
    "ClientConnection",
    "DeployLayout",
    "DeploymentPlan",
    "admin_connection",
    "apply_country",
    "client_settings",
    "cluster_acls",
    "init_deployment",
    "mirror_principal",
    "mirror_topic_patterns",
    "mirrored_topics",
    "probe",
]
