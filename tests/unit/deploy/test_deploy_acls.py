"""The ACL plan: least privilege derived from the routing table (no broker needed)."""

from __future__ import annotations

from exchange.deploy.acls import AclEntry, cluster_acls, mirrored_topics
from exchange.routing import RoutingRule, RoutingTable

AGENCIES = ("MEX-FGJ", "MEX-FGJ-SON", "MEX-FGR", "MEX-SSPC", "USA-ATF", "USA-CBP")
TYPES = ("seizure", "trace-request")
# MEX-FGR seizures go to USA-ATF and MEX-SSPC; USA-ATF trace requests go to MEX-FGR.
ROUTING = RoutingTable(
    rules=[
        RoutingRule(
            senders=["MEX-FGR"], record_types=["seizure"], recipients=["USA-ATF", "MEX-SSPC"]
        ),
        RoutingRule(senders=["USA-ATF"], record_types=["trace-request"], recipients=["MEX-FGR"]),
    ]
)


def _ops(acls: list[AclEntry], principal: str) -> set[tuple[str, str, str, str]]:
    return {
        (e.resource, e.pattern, e.name, e.operation)
        for e in acls
        if e.principal == f"User:{principal}"
    }


def test_agency_writes_only_its_own_outbound_prefix() -> None:
    mex = cluster_acls("MEX", ROUTING, AGENCIES, TYPES)
    writes = {
        (e.principal, e.pattern, e.name)
        for e in mex
        if e.operation == "WRITE" and e.name.startswith("xchg.") and "mirror" not in e.principal
    }
    assert writes == {
        (f"User:{a}", "PREFIXED", f"xchg.{a}.") for a in AGENCIES if a.startswith("MEX-")
    }


def test_prefixes_end_with_a_dot_so_one_agency_never_covers_another() -> None:
    # "xchg.MEX-FGJ" without the dot would also match "xchg.MEX-FGJ-SON.crossborder.seizure".
    mex = cluster_acls("MEX", ROUTING, AGENCIES, TYPES)
    prefixed = [
        e.name for e in mex if e.pattern == "PREFIXED" and e.principal.startswith("User:MEX")
    ]
    assert prefixed
    assert all(name.endswith(".") for name in prefixed)


def test_foreign_recipient_reads_only_the_crossborder_topic_routed_to_it() -> None:
    usa = cluster_acls("USA", ROUTING, AGENCIES, TYPES)
    reads = {
        n
        for (r, p, n, op) in _ops(usa, "USA-ATF")
        if r == "TOPIC" and op == "READ" and n.startswith("xchg.")
    }
    assert reads == {"xchg.MEX-FGR.crossborder.seizure"}
    assert not {
        n for (r, _, n, op) in _ops(usa, "USA-CBP") if op == "READ" and n.startswith("xchg.")
    }


def test_domestic_recipient_reads_both_reaches_of_its_compatriot() -> None:
    mex = cluster_acls("MEX", ROUTING, AGENCIES, TYPES)
    reads = {n for (_, _, n, op) in _ops(mex, "MEX-SSPC") if op == "READ" and n.startswith("xchg.")}
    assert reads == {"xchg.MEX-FGR.crossborder.seizure", "xchg.MEX-FGR.domestic.seizure"}


def test_group_quarantine_audit_and_receipts_rules() -> None:
    usa = cluster_acls("USA", ROUTING, AGENCIES, TYPES)
    atf = _ops(usa, "USA-ATF")
    assert ("GROUP", "LITERAL", "exchange.USA-ATF", "READ") in atf
    assert ("TOPIC", "LITERAL", "quarantine.USA-ATF", "WRITE") in atf
    assert ("TOPIC", "LITERAL", "audit.USA-ATF", "WRITE") in atf
    assert ("TOPIC", "LITERAL", "audit.MEX-FGR", "READ") in atf  # audit logs: read by all
    assert ("TOPIC", "LITERAL", "audit.USA-CBP", "WRITE") not in atf
    assert ("TOPIC", "LITERAL", "receipts.USA-ATF", "READ") in atf
    # ATF receives from MEX-FGR, so it acknowledges on MEX-FGR's receipts; CBP receives
    # nothing and writes no receipts.
    assert ("TOPIC", "LITERAL", "receipts.MEX-FGR", "WRITE") in atf
    assert not {
        n for (_, _, n, op) in _ops(usa, "USA-CBP") if op == "WRITE" and n.startswith("receipts.")
    }


def test_only_the_mirror_writes_foreign_senders_topics_into_this_cluster() -> None:
    mex = cluster_acls("MEX", ROUTING, AGENCIES, TYPES)
    foreign = {
        (e.principal, e.name)
        for e in mex
        if e.operation == "WRITE" and e.name.startswith("xchg.USA-")
    }
    assert foreign == {("User:mirror.MEX", "xchg.USA-ATF.crossborder.trace-request")}


def test_nobody_but_the_mirror_gets_rights_on_another_countrys_agencies() -> None:
    usa = cluster_acls("USA", ROUTING, AGENCIES, TYPES)
    assert not [e for e in usa if e.principal.startswith("User:MEX-")]


def test_mirror_reads_at_source_exactly_what_routing_sends_abroad() -> None:
    mex = cluster_acls("MEX", ROUTING, AGENCIES, TYPES)
    reads = {n for (_, _, n, op) in _ops(mex, "mirror.USA") if op == "READ"}
    assert reads == set(mirrored_topics("MEX", ROUTING, AGENCIES, TYPES, ""))
    assert "xchg.MEX-FGR.crossborder.seizure" in reads
    assert "xchg.MEX-FGR.domestic.seizure" not in reads
    assert "receipts.USA-ATF" in reads  # MEX-FGR acknowledges ATF's trace requests
    assert not [n for n in reads if n.startswith("quarantine.")]


def test_topic_prefix_applies_to_every_topic_name() -> None:
    acls = cluster_acls("USA", ROUTING, AGENCIES, TYPES, prefix="staging.")
    topics = {
        e.name for e in acls if e.resource == "TOPIC" and not e.principal.startswith("User:mirror")
    }
    assert topics
    assert all(name.startswith("staging.") for name in topics)
