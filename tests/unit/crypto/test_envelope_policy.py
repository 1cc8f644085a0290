"""Handling rules (exchange.policy): who may be addressed, who may read, what derivation keeps."""

from __future__ import annotations

from typing import Any

import pytest

from exchange.errors import PolicyError
from exchange.policy import (
    HandlingSummary,
    allowed_recipients,
    check_addressing,
    check_derivation,
    check_release,
    summary_from_handling,
)
from exchange.records.sample import generate

ENROLLED = {"MEX-FGR", "MEX-SSPC", "USA-ATF", "USA-CBP", "CAN-RCMP"}


def h(**kw: Any) -> HandlingSummary:
    base: dict[str, Any] = {
        "tlp": "AMBER",
        "releasable_to": ("MEX", "USA"),
        "originator": "MEX-FGR",
    }
    return HandlingSummary(**(base | kw))


def test_country_outside_releasable_to_is_not_addressable() -> None:
    assert allowed_recipients(h(), ENROLLED, sender="MEX-FGR") == {"MEX-SSPC", "USA-ATF", "USA-CBP"}
    with pytest.raises(PolicyError, match="CAN-RCMP is outside releasable-to"):
        check_addressing(h(), sender="MEX-FGR", recipients=["USA-ATF", "CAN-RCMP"])


def test_named_agencies_narrow_the_recipients() -> None:
    narrowed = h(releasable_to_agencies=("USA-ATF",))
    assert allowed_recipients(narrowed, ENROLLED, sender="MEX-FGR") == {"USA-ATF"}
    with pytest.raises(PolicyError, match="not among the named recipients"):
        check_addressing(narrowed, sender="MEX-FGR", recipients=["USA-CBP"])


def test_tlp_red_needs_named_recipients() -> None:
    assert allowed_recipients(h(tlp="RED"), ENROLLED, sender="MEX-FGR") == frozenset()
    with pytest.raises(PolicyError, match="TLP:RED needs named recipients"):
        check_addressing(h(tlp="RED"), sender="MEX-FGR", recipients=["USA-ATF"])
    red = h(tlp="RED", releasable_to_agencies=("USA-ATF",))
    check_addressing(red, sender="MEX-FGR", recipients=["USA-ATF"])


@pytest.mark.parametrize("caveat", ["ORIGINATOR_CONTROLLED", "NO_THIRD_PARTY_DISSEMINATION"])
def test_originator_controlled_records_are_sent_only_by_the_originator(caveat: str) -> None:
    controlled = h(caveats=(caveat,))
    check_addressing(controlled, sender="MEX-FGR", recipients=["USA-ATF"])
    with pytest.raises(PolicyError, match="only the originator MEX-FGR"):
        check_addressing(controlled, sender="USA-ATF", recipients=["USA-CBP"])
    assert allowed_recipients(controlled, ENROLLED, sender="USA-ATF") == frozenset()


def test_unknown_caveat_is_most_restrictive() -> None:
    unknown = h(caveats=("UNKNOWN",))
    with pytest.raises(PolicyError, match="needs named recipients"):
        check_addressing(unknown, sender="MEX-FGR", recipients=["USA-ATF"])
    named = h(caveats=("UNKNOWN",), releasable_to_agencies=("USA-ATF",))
    check_addressing(named, sender="MEX-FGR", recipients=["USA-ATF"])
    with pytest.raises(PolicyError, match="only the originator"):
        check_addressing(named, sender="MEX-SSPC", recipients=["USA-ATF"])


def test_no_recipients_is_refused() -> None:
    with pytest.raises(PolicyError, match="no recipients"):
        check_addressing(h(), sender="MEX-FGR", recipients=[])


def test_consumer_checks_release_to_itself() -> None:
    check_release(h(), "USA-ATF")
    with pytest.raises(PolicyError, match="not releasable"):
        check_release(h(releasable_to=("MEX",)), "USA-ATF")
    with pytest.raises(PolicyError, match="not releasable"):
        check_release(h(tlp="RED"), "USA-ATF")


def test_derived_records_keep_or_tighten() -> None:
    parent = h(caveats=("PERSONAL_DATA",), releasable_to_agencies=("USA-ATF",))
    check_derivation(parent, h(tlp="RED", caveats=("PERSONAL_DATA", "US_CUI"),
                               releasable_to_agencies=("USA-ATF",)))  # fmt: skip
    for looser, why in [
        (h(tlp="GREEN", caveats=("PERSONAL_DATA",), releasable_to_agencies=("USA-ATF",)),
         "loosens"),
        (h(caveats=("PERSONAL_DATA",)), "named recipients"),
        (h(releasable_to_agencies=("USA-ATF",)), "drops caveats"),
        (h(releasable_to=("CAN", "MEX", "USA"), caveats=("PERSONAL_DATA",),
           releasable_to_agencies=("USA-ATF",)), "widens releasable-to"),
    ]:  # fmt: skip
        with pytest.raises(PolicyError, match=why):
            check_derivation(parent, looser)


def test_summary_is_canonical_and_validated() -> None:
    s = h(releasable_to=("USA", "MEX", "USA"), caveats=("US_CUI", "PERSONAL_DATA"))
    assert s.releasable_to == ("MEX", "USA")
    assert s.caveats == ("PERSONAL_DATA", "US_CUI")
    assert h(tlp="AMBER_STRICT").tlp_label == "TLP:AMBER+STRICT"
    for bad in ({"tlp": "PURPLE"}, {"releasable_to": ("USA",)}, {"originator": "fgr"},
                {"caveats": ("SECRET",)}, {"releasable_to_agencies": ("atf",)}):  # fmt: skip
        with pytest.raises(ValueError, match=r"got|must"):
            h(**bad)


@pytest.mark.parametrize(
    "type_name", ["seizure", "trace-request", "trace-response", "ballistic", "intel"]
)
def test_summary_from_every_record_family(type_name: str) -> None:
    for record in generate(type_name, count=5, seed=3):
        s = summary_from_handling(record.handling)
        assert s.originator == record.handling.originator.agency_id
        assert s.tlp == record.handling.tlp.name
        assert set(s.releasable_to) == set(record.handling.releasable_to)
        assert set(s.caveats) == {c.value for c in record.handling.caveats}
        for agency in ENROLLED:
            assert (_released(s, agency)) == record.handling.is_releasable_to(
                agency
            ) or s.tlp == "RED"


def _released(s: HandlingSummary, agency: str) -> bool:
    try:
        check_release(s, agency)
    except PolicyError:
        return False
    return True
