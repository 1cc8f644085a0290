"""The ACL plan: who may do what on each country's cluster, derived from the routing table.

Pure functions; :mod:`exchange.deploy.apply` turns the plan into ``create_acls`` calls. The
rules (docs/decisions/0006-binational-transport-security.md):

* an agency WRITEs (and CREATEs) only its own outbound topics: PREFIXED ``xchg.<AGENCY>.``
  (the trailing dot keeps ``MEX-FGJ`` out of ``MEX-FGJ-SON``'s topics);
* it READs only the exchange topics some routing rule sends it: LITERAL
  ``xchg.<S>.crossborder.<t>`` for every sender S and record type t whose default
  recipients include it, plus ``xchg.<S>.domestic.<t>`` when S is of its own country (a
  foreign sender's domestic topic never exists on this cluster). Routing patterns are
  expanded over the known agencies and record types, because Kafka ACLs cannot express
  ``xchg.*.crossborder.*``; adding an agency or a type means re-running ``deploy init``;
* its consumer group (LITERAL ``exchange.<AGENCY>``, PREFIXED ``exchange.<AGENCY>.``) and its
  quarantine topic are its own;
* ``audit.<AGENCY>`` is written by its owner and read by every agency on the cluster;
  ``receipts.<AGENCY>`` is read by its owner and written by the agencies it sends to;
* the mirror principal of country D reads, on the other country's cluster, exactly the
  topics that must reach D and writes them, under the same names, into D's cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

# Topic names come from exchange.routing alone, so the ACLs follow any renaming there.
from exchange.routing import (
    RoutingTable,
    audit_topic,
    parse_exchange_topic,
    quarantine_topic,
    receipts_topic,
)

__all__ = [
    "AclEntry",
    "addressed",
    "cluster_acls",
    "mirror_principal",
    "mirrored_topics",
]

Resource = Literal["TOPIC", "GROUP", "CLUSTER"]
Pattern = Literal["LITERAL", "PREFIXED"]

_READ = ("READ", "DESCRIBE")
_WRITE = ("WRITE", "CREATE", "DESCRIBE")
# What MirrorMaker 2 does to a mirrored topic on its target: create it with the source's
# partition count and configuration (retention), then append.
_MIRROR_TARGET = ("CREATE", "WRITE", "DESCRIBE", "ALTER_CONFIGS", "DESCRIBE_CONFIGS")
_MIRROR_SOURCE = ("READ", "DESCRIBE", "DESCRIBE_CONFIGS")


@dataclass(frozen=True, order=True)
class AclEntry:
    """One ALLOW rule: ``principal`` may ``operation`` on ``resource`` ``name`` (any host)."""

    principal: str
    resource: Resource
    pattern: Pattern
    name: str
    operation: str

    @classmethod
    def from_json(cls, doc: dict[str, str]) -> AclEntry:
        """Parse :meth:`to_json`'s document.

        Raises:
            ValueError: an unknown resource or pattern type.
            KeyError: a field is missing.
        """
        resource, pattern = doc["resource"], doc["pattern"]
        if resource not in ("TOPIC", "GROUP", "CLUSTER") or pattern not in ("LITERAL", "PREFIXED"):
            raise ValueError(f"got ACL resource {resource!r} / pattern {pattern!r}")
        return cls(doc["principal"], resource, pattern, doc["name"], doc["operation"])  # type: ignore[arg-type]  # checked just above

    def to_json(self) -> dict[str, str]:
        """The entry as ``plan.json`` stores it."""
        return {
            "principal": self.principal,
            "resource": self.resource,
            "pattern": self.pattern,
            "name": self.name,
            "operation": self.operation,
        }


def mirror_principal(country: str) -> str:
    """The principal of the MirrorMaker 2 that writes into ``country``'s cluster."""
    return f"mirror.{country}"


def _country(agency: str) -> str:
    return agency.split("-", 1)[0]


def _sender(topic: str, prefix: str) -> str:
    parsed = parse_exchange_topic(topic, prefix=prefix)
    return parsed[0] if parsed else ""


def _grant(
    principal: str, resource: Resource, pattern: Pattern, name: str, ops: Iterable[str]
) -> list[AclEntry]:
    return [AclEntry(f"User:{principal}", resource, pattern, name, op) for op in ops]


def addressed(
    routing: RoutingTable, agencies: Sequence[str], record_types: Sequence[str], prefix: str
) -> dict[str, set[str]]:
    """Exchange topics each agency may read, on whichever cluster they exist.

    Returns:
        Agency id -> topic names (with ``prefix``).
    """
    found: dict[str, set[str]] = {a: set() for a in agencies}
    for sender in agencies:
        for rtype in record_types:
            for recipient in routing.targets(sender, rtype):
                if recipient not in found:
                    continue  # not a known agency: nobody to grant
                found[recipient].add(f"{prefix}xchg.{sender}.crossborder.{rtype}")
                if _country(recipient) == _country(sender):
                    found[recipient].add(f"{prefix}xchg.{sender}.domestic.{rtype}")
    return found


def mirrored_topics(
    source: str,
    routing: RoutingTable,
    agencies: Sequence[str],
    record_types: Sequence[str],
    prefix: str,
) -> list[str]:
    """Topics that must cross from ``source``'s cluster to the other country's, by name.

    Crossborder exchange topics of ``source`` senders that route to a foreign agency, the
    audit logs of ``source`` agencies (auditors abroad read them) and the receipts that
    ``source`` recipients write for foreign senders.
    """
    foreign = [a for a in agencies if _country(a) != source]
    topics: set[str] = set()
    for sender in (a for a in agencies if _country(a) == source):
        topics.add(audit_topic(sender, prefix=prefix))
        for rtype in record_types:
            if any(_country(r) != source for r in routing.targets(sender, rtype)):
                topics.add(f"{prefix}xchg.{sender}.crossborder.{rtype}")
    for sender in foreign:
        for rtype in record_types:
            if any(_country(r) == source for r in routing.targets(sender, rtype)):
                topics.add(receipts_topic(sender, prefix=prefix))
    return sorted(topics)


def cluster_acls(
    country: str,
    routing: RoutingTable,
    agencies: Sequence[str],
    record_types: Sequence[str],
    *,
    prefix: str = "",
) -> list[AclEntry]:
    """Every ACL of ``country``'s cluster (agencies of that country and both mirrors).

    Args:
        country: ``MEX`` or ``USA``.
        routing: The routing table whose default recipients decide read rights.
        agencies: Every known agency of both countries.
        record_types: Every record type name.
        prefix: The deployment's topic prefix.

    Returns:
        The entries, sorted and without duplicates.
    """
    acls: list[AclEntry] = []
    reads = addressed(routing, agencies, record_types, prefix)
    home = [a for a in agencies if _country(a) == country]
    for agency in home:
        senders = {_sender(topic, prefix) for topic in reads[agency]}
        acls += _grant(agency, "TOPIC", "PREFIXED", f"{prefix}xchg.{agency}.", _WRITE)
        for topic in sorted(reads[agency]):
            acls += _grant(agency, "TOPIC", "LITERAL", topic, _READ)
        acls += _grant(
            agency, "TOPIC", "LITERAL", quarantine_topic(agency, prefix=prefix), (*_WRITE, "READ")
        )
        acls += _grant(agency, "GROUP", "LITERAL", f"exchange.{agency}", ("READ", "DESCRIBE"))
        acls += _grant(agency, "GROUP", "PREFIXED", f"exchange.{agency}.", ("READ", "DESCRIBE"))
        acls += _grant(agency, "TOPIC", "LITERAL", audit_topic(agency, prefix=prefix), _WRITE)
        acls += _grant(
            agency, "TOPIC", "LITERAL", receipts_topic(agency, prefix=prefix), (*_READ, "CREATE")
        )
        for other in agencies:
            acls += _grant(agency, "TOPIC", "LITERAL", audit_topic(other, prefix=prefix), _READ)
            # A recipient acknowledges what it receives: it writes the sender's receipts.
            if other != agency and other in senders:
                acls += _grant(
                    agency, "TOPIC", "LITERAL", receipts_topic(other, prefix=prefix), _WRITE
                )
    other_country = next(c for c in ("MEX", "USA") if c != country)
    # The mirror of the other country reads here what must reach it ...
    outbound = mirrored_topics(country, routing, agencies, record_types, prefix)
    for topic in outbound:
        acls += _grant(mirror_principal(other_country), "TOPIC", "LITERAL", topic, _MIRROR_SOURCE)
    # ... and this country's mirror writes here what comes from the other cluster, and
    # keeps Kafka Connect's state (mm2-*.internal topics, group "<source>-mm2") here.
    inbound = mirrored_topics(other_country, routing, agencies, record_types, prefix)
    mirror = mirror_principal(country)
    for topic in inbound:
        acls += _grant(mirror, "TOPIC", "LITERAL", topic, _MIRROR_TARGET)
    acls += _grant(mirror, "TOPIC", "PREFIXED", "mm2-", ("ALL",))
    acls += _grant(mirror, "TOPIC", "LITERAL", "heartbeats", ("CREATE", "DESCRIBE", "WRITE"))
    acls += _grant(
        mirror, "TOPIC", "PREFIXED", f"{other_country}.", ("CREATE", "DESCRIBE", "WRITE")
    )
    acls += _grant(mirror, "GROUP", "LITERAL", f"{other_country}-mm2", ("ALL",))
    return sorted(set(acls))
