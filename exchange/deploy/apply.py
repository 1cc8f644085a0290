"""Applying the plan to a running cluster: SCRAM users and ACLs, through the setup principal.

The setup principal (``admin.<CTY>``, a super user) connects over mTLS; SCRAM passwords are
read from their 0600 files and sent only inside the AdminClient request, where the broker
derives salted SCRAM-SHA-512 credentials from them. Applying twice is harmless: Kafka
ignores an ACL that already exists and replaces a user's credential.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

# Imported from their defining modules: confluent_kafka.admin re-exports them untyped.
from confluent_kafka.admin._acl import AclBinding, AclOperation, AclPermissionType
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType
from confluent_kafka.admin._scram import (
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from exchange.deploy.acls import AclEntry
from exchange.deploy.layout import DeployLayout
from exchange.deploy.plan import DeploymentPlan
from exchange.errors import BrokerError
from exchange.kafka_clients import broker_error

__all__ = ["SCRAM_ITERATIONS", "admin_connection", "apply_country"]

#: RFC 7677 asks for at least 4096; Kafka's own tools default to 4096.
SCRAM_ITERATIONS = 8192
_TIMEOUT_S = 30.0


def admin_connection(layout: DeployLayout, plan: DeploymentPlan, country: str) -> dict[str, Any]:
    """librdkafka settings of ``country``'s setup principal (mTLS, super user)."""
    here = layout.country(country)
    return {
        "bootstrap.servers": plan.ports[country].ssl_bootstrap,
        "security.protocol": "SSL",
        "ssl.ca.location": str(here.ca_cert),
        "ssl.certificate.location": str(here.admin.cert),
        "ssl.key.location": str(here.admin.key),
    }


def apply_country(layout: DeployLayout, plan: DeploymentPlan, country: str) -> tuple[int, int]:
    """Create ``country``'s SCRAM users and ACLs.

    Returns:
        ``(users, acls)`` applied.

    Raises:
        BrokerError: the cluster refused or did not answer.
    """
    admin = AdminClient(admin_connection(layout, plan, country))
    here = layout.country(country)
    upserts: list[UserScramCredentialAlteration] = []
    for agency in plan.agencies_of(country):
        password = here.scram_password(agency).read_bytes().strip()
        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        upserts.append(UserScramCredentialUpsertion(agency, info, password))
    if upserts:
        futures = admin.alter_user_scram_credentials(upserts, request_timeout=_TIMEOUT_S)
        for user, future in futures.items():
            _result(future, f"set the SCRAM credential of {user} on {country}")
    bindings = [_binding(entry) for entry in plan.acls[country]]
    if bindings:
        for binding, future in admin.create_acls(bindings, request_timeout=_TIMEOUT_S).items():
            _result(future, f"create ACL {binding} on {country}")
    return len(upserts), len(bindings)


def _result(future: Any, action: str) -> None:
    try:
        future.result(timeout=_TIMEOUT_S)
    except KafkaException as exc:
        raise broker_error(action, exc) from None
    except TimeoutError:
        raise BrokerError(f"{action}: no answer within {_TIMEOUT_S:.0f} s") from None


def _binding(entry: AclEntry) -> AclBinding:
    return AclBinding(
        ResourceType[entry.resource],
        entry.name,
        ResourcePatternType[entry.pattern],
        entry.principal,
        "*",
        AclOperation[entry.operation],
        AclPermissionType.ALLOW,
    )
