"""Applying the plan to a running cluster: SCRAM users and ACLs, through the setup principal.

The setup principal (``admin.<CTY>``, a super user) connects over mTLS; SCRAM passwords are
read from their 0600 files and sent only inside the AdminClient request, where the broker
derives salted SCRAM-SHA-512 credentials from them.

Applying *converges*: afterwards the cluster holds exactly the plan's ACLs and SCRAM users.
Bindings and users the plan no longer names (a removed agency, a narrowed routing rule) are
deleted, which is how access is revoked. Applying twice is harmless.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

# Imported from their defining modules: confluent_kafka.admin re-exports them untyped.
from confluent_kafka.admin._acl import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
)
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType
from confluent_kafka.admin._scram import (
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialDeletion,
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
    """Make ``country``'s SCRAM users and ACLs exactly those of the plan.

    Returns:
        ``(users, acls)`` the plan holds.

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
    _drop_stale_users(admin, {u.user for u in upserts}, country)
    bindings = [_binding(entry) for entry in plan.acls[country]]
    if bindings:
        for binding, future in admin.create_acls(bindings, request_timeout=_TIMEOUT_S).items():
            _result(future, f"create ACL {binding} on {country}")
    _drop_stale_acls(admin, set(plan.acls[country]), country)
    return len(upserts), len(bindings)


def _drop_stale_users(admin: AdminClient, wanted: set[str], country: str) -> None:
    try:
        # Without a user list the call returns one future for every user's description.
        described: Any = admin.describe_user_scram_credentials(request_timeout=_TIMEOUT_S)
        existing = set(described.result(timeout=_TIMEOUT_S))
    except KafkaException as exc:
        raise broker_error(f"list SCRAM users on {country}", exc) from None
    stale = sorted(existing - wanted)
    if stale:
        deletions: list[UserScramCredentialAlteration] = [
            UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512) for user in stale
        ]
        futures = admin.alter_user_scram_credentials(deletions, request_timeout=_TIMEOUT_S)
        for user, future in futures.items():
            _result(future, f"delete the SCRAM credential of {user} on {country}")


def _drop_stale_acls(admin: AdminClient, wanted: set[AclEntry], country: str) -> None:
    # None matches any name, principal and host (librdkafka's filter semantics); the
    # stubs type those parameters as str.
    anything: Any = None
    every = AclBindingFilter(
        ResourceType.ANY, anything, ResourcePatternType.ANY, anything, anything,
        AclOperation.ANY, AclPermissionType.ANY,
    )  # fmt: skip
    try:
        existing = admin.describe_acls(every, request_timeout=_TIMEOUT_S).result(_TIMEOUT_S)
    except KafkaException as exc:
        raise broker_error(f"list ACLs on {country}", exc) from None
    stale = [b for b in existing if _entry(b) not in wanted]
    if stale:
        filters = [
            AclBindingFilter(
                b.restype,
                b.name,
                b.resource_pattern_type,
                b.principal,
                b.host,
                b.operation,
                b.permission_type,
            )
            for b in stale
        ]
        for binding, future in admin.delete_acls(filters, request_timeout=_TIMEOUT_S).items():
            _result(future, f"delete ACL {binding} on {country}")


def _entry(binding: AclBinding) -> AclEntry | None:
    def name(value: object) -> str:
        # The binding's fields are enums once described; their names are the plan's words.
        return str(getattr(value, "name", value))

    if name(binding.permission_type) != "ALLOW" or binding.host != "*":
        return None  # never part of a plan: stale by definition
    try:
        return AclEntry.from_json(
            {
                "principal": str(binding.principal),
                "resource": name(binding.restype),
                "pattern": name(binding.resource_pattern_type),
                "name": str(binding.name),
                "operation": name(binding.operation),
            }
        )
    except ValueError:
        return None


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
