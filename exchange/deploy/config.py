"""Rendering the broker security settings and the MirrorMaker 2 configuration of a country.

Both are ``java.util.Properties`` files holding *paths* to key material, never key material
or passwords: Kafka reads the PEM files itself. SCRAM passwords never reach a broker file at
all; they are set at run time through the AdminClient (``alter_user_scram_credentials``),
which stores only salted SCRAM hashes in the cluster metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from exchange.deploy.layout import CountryLayout

__all__ = [
    "CountryPorts",
    "admin_principal",
    "broker_principal",
    "broker_security_properties",
    "mirror_properties",
    "parse_properties",
    "render_properties",
]

LOOPBACK = "127.0.0.1"

#: Takes the CN of a client certificate as the principal: ``CN=MEX-FGR,O=MEX`` -> MEX-FGR.
PRINCIPAL_MAPPING = "RULE:^CN=([a-zA-Z0-9._-]+).*$/$1/,DEFAULT"
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


@dataclass(frozen=True)
class CountryPorts:
    """One country's loopback ports: mTLS clients, controller, SCRAM clients."""

    ssl: int
    controller: int
    sasl: int

    @property
    def ssl_bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.ssl}"

    @property
    def sasl_bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.sasl}"


def broker_principal(country: str) -> str:
    """CN of ``country``'s broker certificate (inter-broker and controller traffic)."""
    return f"broker.{country}"


def admin_principal(country: str) -> str:
    """CN of ``country``'s setup principal, which applies ACLs and SCRAM users."""
    return f"admin.{country}"


def broker_security_properties(
    country: str, ports: CountryPorts, layout: CountryLayout
) -> dict[str, str]:
    """``server.properties`` overrides: mTLS and SCRAM listeners, StandardAuthorizer.

    Every listener is TLS, the controller and inter-broker ones included, so no port grants
    ``User:ANONYMOUS`` anything; the broker authenticates with its own certificate and is,
    with the setup principal, the only super user.
    """
    listeners = (
        f"SSL://{LOOPBACK}:{ports.ssl},CONTROLLER://{LOOPBACK}:{ports.controller},"
        f"SASL_SSL://{LOOPBACK}:{ports.sasl}"
    )
    return {
        "listeners": listeners,
        "advertised.listeners": listeners,
        "listener.security.protocol.map": "CONTROLLER:SSL,SSL:SSL,SASL_SSL:SASL_SSL",
        "inter.broker.listener.name": "SSL",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(layout.broker_keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(layout.ca_cert),
        "ssl.enabled.protocols": "TLSv1.3",
        "ssl.protocol": "TLSv1.3",
        "ssl.client.auth": "required",
        "ssl.principal.mapping.rules": PRINCIPAL_MAPPING,
        # SCRAM clients prove themselves by password; TLS there authenticates the broker.
        "listener.name.sasl_ssl.ssl.client.auth": "none",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": SCRAM_JAAS,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{broker_principal(country)};User:{admin_principal(country)}",
    }


def mirror_properties(
    target: str,
    source: str,
    ports: Mapping[str, CountryPorts],
    layout: CountryLayout,
    topics: list[str],
    *,
    refresh_s: int = 5,
) -> dict[str, str]:
    """``mm2.properties`` of the MirrorMaker 2 that pulls ``source`` -> ``target``.

    Each country runs the mirror that writes into its own cluster (pull): it holds a
    certificate of each CA, and the source country's ACLs decide what it may read.

    Args:
        target: The country whose cluster receives.
        source: The other country.
        ports: Ports per country.
        layout: ``target``'s layout (where the mirror's keystores live).
        topics: Java regexes of topics to replicate.
        refresh_s: How often new source topics are discovered.
    """
    props = {
        "clusters": f"{source}, {target}",
        f"{source}->{target}.enabled": "true",
        f"{source}->{target}.topics": ",".join(topics),
        f"{target}->{source}.enabled": "false",
        # Keep topic names: consumers abroad subscribe to xchg.<sender>... as at home.
        "replication.policy.class": "org.apache.kafka.connect.mirror.IdentityReplicationPolicy",
        # Only the data crosses: no heartbeats, checkpoints, offset syncs, ACL or group sync.
        # (MirrorMaker then logs that its checkpoint connector "can't run": intended. No
        # offset-syncs.* key may be set, or the source connector refuses its config too.)
        "emit.heartbeats.enabled": "false",
        "emit.checkpoints.enabled": "false",
        "emit.offset-syncs.enabled": "false",
        "sync.group.offsets.enabled": "false",
        "sync.topic.acls.enabled": "false",
        "refresh.topics.interval.seconds": str(refresh_s),
        "refresh.groups.interval.seconds": "600",
        "replication.factor": "1",
        "heartbeats.topic.replication.factor": "1",
        "checkpoints.topic.replication.factor": "1",
        "config.storage.replication.factor": "1",
        "offset.storage.replication.factor": "1",
        "status.storage.replication.factor": "1",
    }
    sides = {
        source: (layout.mirror_remote_keystore, layout.mirror_remote_ca),
        target: (layout.mirror_local_keystore, layout.ca_cert),
    }
    for cluster, (keystore, truststore) in sides.items():
        props |= {
            f"{cluster}.bootstrap.servers": ports[cluster].ssl_bootstrap,
            f"{cluster}.security.protocol": "SSL",
            f"{cluster}.ssl.keystore.type": "PEM",
            f"{cluster}.ssl.keystore.location": str(keystore),
            f"{cluster}.ssl.truststore.type": "PEM",
            f"{cluster}.ssl.truststore.location": str(truststore),
        }
    return props


def render_properties(props: Mapping[str, str], header: str) -> str:
    """``key=value`` lines under a ``# header`` comment.

    Raises:
        ValueError: a key or value would not survive ``java.util.Properties`` parsing.
    """
    lines = [f"# {header}"]
    for key, value in props.items():
        if not key or any(ch in key for ch in "=: \t\n\r#!\\"):
            raise ValueError(f"got property name {key!r}, expected a plain name")
        if "\n" in value or "\r" in value:
            raise ValueError(f"got a multi-line value for {key}, expected one line")
        lines.append(f"{key}={value.replace(chr(92), chr(92) * 2)}")
    return "\n".join(lines) + "\n"


def parse_properties(text: str) -> dict[str, str]:
    """Read back what :func:`render_properties` wrote (comments skipped)."""
    props: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.partition("=")
        props[key.strip()] = value.replace("\\\\", "\\")
    return props
