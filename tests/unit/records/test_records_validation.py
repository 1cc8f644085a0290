"""Model validation: records come from untrusted peers, so bad input must be refused with
one RecordValidationError line that names the field, and handling rules must hold."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from exchange.errors import RecordValidationError
from exchange.records import (
    AgencyRef,
    Caveat,
    ExchangeRecord,
    Handling,
    SeizureRecord,
    Tlp,
    TraceResponse,
    record_type,
)


def _seizure_error(data: dict[str, Any]) -> str:
    with pytest.raises(RecordValidationError) as info:
        record_type("seizure").from_json(data)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("seizure: ")
    assert info.value.record_type == "seizure"
    return message


def test_valid_seizure_json_is_accepted(seizure_json: dict[str, Any]) -> None:
    record = record_type("seizure").from_json(seizure_json)
    assert record.meta.record_id == seizure_json["meta"]["recordId"]


@pytest.mark.parametrize("code", ["XXX", "mex", "MX", "MEXX", "", "MÉX"])
def test_bad_country_code_is_refused(seizure_json: dict[str, Any], code: str) -> None:
    seizure_json["location"]["country"] = code
    message = _seizure_error(seizure_json)
    assert "location.country" in message


@pytest.mark.parametrize(
    "agency_id",
    [
        "MEX_FGR",
        "mex-fgr",
        "XXX-FGR",
        "MEX-",
        "MEX-F",
        "MEX-FGR-A-B-C",
        "MEX-FGR\n",
        "MEX-FG R",
        "MEX-" + "A" * 17,
        "FGR",
    ],
)
def test_bad_agency_id_is_refused(agency_id: str) -> None:
    with pytest.raises(ValueError, match="expected <ISO alpha-3>-<AGENCY>"):
        AgencyRef(agency_id=agency_id, country="MEX")


@pytest.mark.parametrize("agency_id", ["MEX-FGR", "MEX-FGJ-CHIH", "USA-ATF", "GTM-PNC", "MEX-C5"])
def test_good_agency_ids_are_accepted(agency_id: str) -> None:
    assert AgencyRef(agency_id=agency_id, country=agency_id[:3]).agency_id == agency_id


def test_agency_country_must_match_its_id(seizure_json: dict[str, Any]) -> None:
    seizure_json["seizingAgency"]["country"] = "USA"
    assert "does not belong to country 'USA'" in _seizure_error(seizure_json)


def test_releasable_to_must_include_originator_country(seizure_json: dict[str, Any]) -> None:
    origin = seizure_json["handling"]["originator"]["country"]
    other = "USA" if origin == "MEX" else "MEX"
    seizure_json["handling"]["releasableTo"] = [other]
    seizure_json["handling"]["releasableToAgencies"] = None
    message = _seizure_error(seizure_json)
    assert "handling" in message
    assert f"originator's country '{origin}'" in message


def test_releasable_to_agencies_must_be_within_releasable_to(
    seizure_json: dict[str, Any],
) -> None:
    origin = seizure_json["handling"]["originator"]["country"]
    seizure_json["handling"]["releasableTo"] = [origin]
    seizure_json["handling"]["releasableToAgencies"] = ["CAN-RCMP"]
    assert "names 'CAN-RCMP' outside releasableTo" in _seizure_error(seizure_json)


def test_empty_agency_narrowing_is_refused(seizure_json: dict[str, Any]) -> None:
    seizure_json["handling"]["releasableToAgencies"] = []
    assert "handling.releasableToAgencies" in _seizure_error(seizure_json)


def test_repeated_country_is_refused(seizure_json: dict[str, Any]) -> None:
    seizure_json["handling"]["releasableTo"] *= 2
    assert "releasableTo repeats a value" in _seizure_error(seizure_json)


@pytest.mark.parametrize("tlp", ["AMBER+STRICT", "TLP:AMBER", "WHITE", "amber", "", None])
def test_unknown_tlp_is_refused(seizure_json: dict[str, Any], tlp: Any) -> None:
    seizure_json["handling"]["tlp"] = tlp
    assert "handling.tlp" in _seizure_error(seizure_json)


def test_missing_tlp_defaults_to_red_which_needs_named_recipients(
    seizure_json: dict[str, Any],
) -> None:
    del seizure_json["handling"]["tlp"]
    seizure_json["handling"]["releasableToAgencies"] = None
    assert "require named recipients" in _seizure_error(seizure_json)
    originator = seizure_json["handling"]["originator"]["agencyId"]
    seizure_json["handling"]["releasableToAgencies"] = [originator]
    assert record_type("seizure").from_json(seizure_json).handling.tlp is Tlp.RED


def test_unknown_caveat_needs_named_recipients() -> None:
    with pytest.raises(ValueError, match="require named recipients"):
        Handling.model_validate(_handling(caveats=["UNKNOWN"]))
    named = Handling.model_validate(
        _handling(caveats=["UNKNOWN"], releasableToAgencies=["USA-ATF"])
    )
    assert named.caveats == [Caveat.UNKNOWN]


def test_unknown_caveat_is_refused(seizure_json: dict[str, Any]) -> None:
    seizure_json["handling"]["caveats"] = ["NOFORN"]
    assert "handling.caveats.0" in _seizure_error(seizure_json)


@pytest.mark.parametrize(
    ("tlp", "label", "rank"),
    [
        (Tlp.CLEAR, "TLP:CLEAR", 0),
        (Tlp.GREEN, "TLP:GREEN", 1),
        (Tlp.AMBER, "TLP:AMBER", 2),
        (Tlp.AMBER_STRICT, "TLP:AMBER+STRICT", 3),
        (Tlp.RED, "TLP:RED", 4),
    ],
)
def test_tlp_labels_are_verbatim(tlp: Tlp, label: str, rank: int) -> None:
    assert (tlp.label, tlp.rank) == (label, rank)


def _handling(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "tlp": "AMBER",
        "releasableTo": ["MEX", "USA"],
        "originator": {"agencyId": "MEX-FGR", "country": "MEX"},
        "caveats": [],
        "retention": {"policy": "P", "disposition": "REVIEW"},
    }
    base.update(changes)
    return base


def test_clear_cannot_carry_restrictive_caveats() -> None:
    with pytest.raises(ValueError, match="TLP:CLEAR cannot carry"):
        Handling.model_validate(_handling(tlp="CLEAR", caveats=["MX_RESERVADA"]))
    assert Handling.model_validate(_handling(tlp="CLEAR")).tlp is Tlp.CLEAR


def test_personal_data_needs_amber() -> None:
    with pytest.raises(ValueError, match="PERSONAL_DATA requires TLP:AMBER"):
        Handling.model_validate(_handling(tlp="GREEN", caveats=["PERSONAL_DATA"]))


def test_is_releasable_to_honours_countries_and_agency_narrowing() -> None:
    wide = Handling.model_validate(_handling())
    assert wide.is_releasable_to("USA-ATF")
    assert wide.is_releasable_to("MEX-SSPC")
    assert not wide.is_releasable_to("CAN-RCMP")
    narrow = Handling.model_validate(_handling(releasableToAgencies=["USA-ATF"]))
    assert narrow.is_releasable_to("USA-ATF")
    assert not narrow.is_releasable_to("USA-CBP")


def test_trace_response_must_carry_trace_data_restricted(
    one_of_each: dict[str, ExchangeRecord],
) -> None:
    response = one_of_each["trace-response"]
    assert isinstance(response, TraceResponse)
    data = response.model_dump(mode="json")
    data["handling"]["caveats"] = [
        c for c in data["handling"]["caveats"] if c != Caveat.TRACE_DATA_RESTRICTED
    ]
    with pytest.raises(RecordValidationError, match="must include TRACE_DATA_RESTRICTED"):
        record_type("trace-response").from_json(data)


def test_foreign_firearm_needs_an_importer(seizure_json: dict[str, Any]) -> None:
    firearm = seizure_json["firearms"][0]
    firearm["countryOfOrigin"], firearm["importer"] = "AUT", None
    assert "importer is required when countryOfOrigin is not USA" in _seizure_error(seizure_json)
    firearm["countryOfOrigin"] = "USA"
    record = record_type("seizure").from_json(seizure_json)
    assert isinstance(record, SeizureRecord)
    assert record.firearms[0].importer is None


def test_named_persons_need_the_personal_data_caveat(seizure_json: dict[str, Any]) -> None:
    person = {"personUid": "1b4e28ba-2fa1-41d2-883f-0016d3cca427", "role": "SUSPECT"}
    seizure_json["persons"] = [person]
    seizure_json["handling"]["caveats"] = ["LAW_ENFORCEMENT_SENSITIVE"]
    assert "must include PERSONAL_DATA" in _seizure_error(seizure_json)


def test_unknown_field_from_a_peer_is_refused(seizure_json: dict[str, Any]) -> None:
    seizure_json["handling"]["declassifyOn"] = "2020-01-01"
    assert "handling.declassifyOn" in _seizure_error(seizure_json)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("seizureId",), "S" * 65),
        (("narrative",), "n" * 65537),
        (("location", "locality"), "L" * 257),
        (("offenseCodes",), ["X"] * 33),
        (("meta", "recordId"), "1B4E28BA-2FA1-41D2-883F-0016D3CCA427"),
        (("meta", "lang"), "es-MX\n"),
        (
            ("evidence",),
            [
                {
                    "exhibitId": "E",
                    "custodian": {"agencyId": "MEX-FGR", "country": "MEX"},
                    "digests": ["ab" * 31],
                }
            ],
        ),
        (("location", "latitude"), 91.0),
    ],
    ids=[
        "id-64",
        "narrative-64k",
        "locality-256",
        "list-32",
        "uuid-case",
        "lang-newline",
        "digest-31-bytes",
        "latitude",
    ],
)
def test_bounds_and_syntax_are_enforced(
    seizure_json: dict[str, Any], path: tuple[str, ...], value: Any
) -> None:
    data = copy.deepcopy(seizure_json)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert ".".join(path) in _seizure_error(data)


def test_error_counts_further_problems_in_one_line(seizure_json: dict[str, Any]) -> None:
    seizure_json["location"]["country"] = "XXX"
    seizure_json["seizingAgency"]["agencyId"] = "bad"
    assert "(and 1 more)" in _seizure_error(seizure_json)
