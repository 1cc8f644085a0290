"""The seeded sample generator: deterministic, valid, realistic and consistent across families."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from exchange.cli import main
from exchange.cli.sample import sample
from exchange.errors import RecordValidationError
from exchange.records import (
    RECORD_TYPE_NAMES,
    BallisticRecord,
    SeizureRecord,
    Tlp,
    TraceRequest,
    TraceResponse,
    record_type,
)
from exchange.records.ballistic import ExhibitOrigin, LinkStatus
from exchange.records.intel import RecordFamily
from exchange.records.sample import SAMPLE_EPOCH, SampleCorpus, generate, generate_corpus


def _lines(corpus: SampleCorpus) -> list[str]:
    return [record_type(r.record_type_name).to_json(r) for r in corpus.records()]


def test_same_seed_same_records_different_seed_different_records() -> None:
    assert _lines(generate_corpus(3, cases=4)) == _lines(generate_corpus(3, cases=4))
    assert _lines(generate_corpus(3, cases=4)) != _lines(generate_corpus(4, cases=4))


def test_timestamps_derive_from_the_seed_not_the_clock(corpus: SampleCorpus) -> None:
    latest = SAMPLE_EPOCH.replace(year=SAMPLE_EPOCH.year + 2)
    for record in corpus.records():
        assert SAMPLE_EPOCH <= record.meta.created_at <= latest
    for ballistic in corpus.ballistic:
        for acquisition in ballistic.acquisitions:
            assert acquisition.acquired_at.date() >= ballistic.event_date


@pytest.mark.parametrize("name", RECORD_TYPE_NAMES)
def test_generate_returns_count_records_of_the_family(name: str) -> None:
    records = generate(name, count=3, seed=1)
    assert len(records) == 3
    assert all(isinstance(r, record_type(name).model) for r in records)
    assert len({r.meta.record_id for r in records}) == 3


def test_trace_requests_reference_seizures_and_their_firearms(corpus: SampleCorpus) -> None:
    seizures = {s.meta.record_id: s for s in corpus.seizures}
    requests = {r.meta.record_id for r in corpus.trace_requests}
    for request in corpus.trace_requests:
        assert request.seizure_record_id is not None
        seizure = seizures[request.seizure_record_id]
        assert request.firearm in seizure.firearms
        assert request.meta.record_id in seizure.trace_request_ids
        assert request.recovery_location == seizure.location
        assert "USA" in request.handling.releasable_to  # it goes to ATF's tracing center
    assert {i for s in corpus.seizures for i in s.trace_request_ids} == requests


def test_trace_responses_answer_requests_without_loosening_them(corpus: SampleCorpus) -> None:
    requests = {r.meta.record_id: r for r in corpus.trace_requests}
    assert len(corpus.trace_responses) == len(requests)
    for response in corpus.trace_responses:
        request = requests[response.request_record_id]
        assert response.handling.tlp.rank >= request.handling.tlp.rank
        assert set(response.handling.releasable_to) <= set(request.handling.releasable_to)
        if response.time_to_crime_days is not None:
            assert response.first_retail_sale_date is not None
            ttc = (request.recovery_date - response.first_retail_sale_date).days
            assert ttc == response.time_to_crime_days


def test_ballistic_links_cross_the_border(corpus: SampleCorpus) -> None:
    by_id = {b.meta.record_id: b for b in corpus.ballistic}
    firearms = {f.firearm_uid for s in corpus.seizures for f in s.firearms}
    crossings = 0
    for record in corpus.ballistic:
        assert record.links
        for link in record.links:
            assert link.linked_record_id is not None
            linked = by_id[link.linked_record_id]
            assert linked.exhibit.exhibit_id == link.linked_exhibit_id
            assert linked.class_characteristics.caliber == record.class_characteristics.caliber
            if record.origin is ExhibitOrigin.TEST_FIRE:
                assert record.test_fired_firearm_uid in firearms
            elif {record.event_location.country, linked.event_location.country} == {"MEX", "USA"}:
                crossings += 1
                # Crime-scene pairs link both ways with the same review status.
                back = [lk for lk in linked.links if lk.linked_record_id == record.meta.record_id]
                assert [lk.status for lk in back] == [link.status]
    assert crossings >= 2 * 12
    statuses = {lk.status for b in corpus.ballistic for lk in b.links}
    assert {LinkStatus.LEAD, LinkStatus.HIT_CONFIRMED} <= statuses
    assert any(b.origin is ExhibitOrigin.TEST_FIRE for b in corpus.ballistic)


def test_intel_reports_cite_records_and_keep_their_restrictions(corpus: SampleCorpus) -> None:
    index = {r.meta.record_id: r for r in corpus.records()}
    family_of = {
        SeizureRecord: RecordFamily.SEIZURE,
        TraceRequest: RecordFamily.TRACE_REQUEST,
        TraceResponse: RecordFamily.TRACE_RESPONSE,
        BallisticRecord: RecordFamily.BALLISTIC,
    }
    for report in corpus.intel:
        assert index[report.record_refs[0].record_id] in corpus.seizures
        for ref in report.record_refs:
            source = index[ref.record_id]
            assert family_of[type(source)] is ref.record_family
            assert report.handling.tlp.rank >= source.handling.tlp.rank
            assert set(source.handling.caveats) <= set(report.handling.caveats)
            assert set(report.handling.releasable_to) <= set(source.handling.releasable_to)
            assert source.handling.is_releasable_to(report.handling.originator.agency_id)
            named = source.handling.releasable_to_agencies
            if named is not None:
                assert report.handling.releasable_to_agencies is not None
                assert set(report.handling.releasable_to_agencies) <= set(named)
        stix_ids = {i.stix_id for i in report.indicators}
        assert all(r.source_ref in stix_ids for r in report.relationships)


def test_handling_is_varied(corpus: SampleCorpus) -> None:
    records = corpus.records()
    assert {r.handling.tlp for r in records} >= {Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED}
    assert {r.handling.originator.country for r in records} == {"MEX", "USA"}
    reach = {len(r.handling.releasable_to) for r in records}
    assert reach == {1, 2}  # mostly binational, some national-only
    binational = sum(len(r.handling.releasable_to) == 2 for r in records)
    assert binational > len(records) * 0.7


def test_mexican_records_are_in_spanish(corpus: SampleCorpus) -> None:
    for seizure in corpus.seizures:
        spanish = seizure.handling.originator.country == "MEX"
        assert seizure.meta.lang == ("es-MX" if spanish else "en-US")
        assert seizure.narrative is not None
        assert ("aseguraron" in seizure.narrative) == spanish


def test_places_and_calibres_are_the_domain_ones(corpus: SampleCorpus) -> None:
    localities = {s.location.locality for s in corpus.seizures}
    assert localities <= {
        "Nogales",
        "Hermosillo",
        "San Luis Río Colorado",
        "Agua Prieta",
        "Ciudad Juárez",
        "Chihuahua",
        "Ojinaga",
        "Nuevo Laredo",
        "Reynosa",
        "Matamoros",
        "Culiacán",
        "Guadalajara",
        "El Paso",
        "Laredo",
        "Houston",
        "McAllen",
        "San Antonio",
        "Tucson",
        "Phoenix",
    }
    for seizure in corpus.seizures:
        lat, lon = seizure.location.latitude, seizure.location.longitude
        assert lat is not None
        assert lon is not None
        assert 20.0 < lat < 34.0
        assert -115.0 < lon < -95.0
    calibres = {f.caliber for s in corpus.seizures for f in s.firearms}
    assert calibres & {"9mm Luger", ".223 Rem", "5.56x45mm", "7.62x39mm", ".50 BMG", ".38 Super"}


def test_originator_override_applies_to_every_record() -> None:
    corpus = generate_corpus(2, cases=2, originator="MEX-FGJ-CHIH")
    assert {r.handling.originator.agency_id for r in corpus.records()} == {"MEX-FGJ-CHIH"}
    assert all(r.meta.lang == "es-MX" for r in corpus.records())


def test_invalid_originator_is_refused() -> None:
    with pytest.raises(RecordValidationError, match="originator 'mex-fgr'"):
        generate("seizure", count=1, originator="mex-fgr")


def test_count_is_bounded() -> None:
    with pytest.raises(ValueError, match="expected 1 to 10000"):
        generate("seizure", count=0)


def test_cli_prints_json_lines_that_from_json_accepts() -> None:
    args = ["--type", "trace-request", "--count", "5", "--seed", "9", "--originator", "MEX-FGR"]
    first = CliRunner().invoke(sample, args)
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert len(lines) == 5
    for line in lines:
        record = record_type("trace-request").from_json(line)
        assert record.handling.originator.agency_id == "MEX-FGR"
        assert json.loads(line)["handling"]["originator"]["agencyId"] == "MEX-FGR"
    assert CliRunner().invoke(sample, args).output == first.output


def test_cli_bad_originator_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sample", "--type", "seizure", "--originator", "FGR"])
    err = capsys.readouterr().err.splitlines()
    assert code == 4
    assert len(err) == 1
    assert err[0].startswith("error: originator 'FGR'")


def test_cli_unknown_type_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", "--type", "firearm"]) == 2
    assert "'firearm' is not one of" in capsys.readouterr().err
