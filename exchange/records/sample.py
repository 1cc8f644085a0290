"""Seeded generator of realistic, mutually consistent sample records.

The same seed always gives the same records (no clock, no global randomness). A corpus
ties the families together the way real traffic does: trace requests name the seizure
and firearm they came from, trace responses answer those requests, ballistic records
link exhibits across Mexican and US cases, and intelligence reports cite all of them
with handling that keeps or tightens their sources' restrictions::

    from exchange.records.sample import generate, generate_corpus

    corpus = generate_corpus(seed=7, cases=3)
    request = corpus.trace_requests[0]
    assert request.seizure_record_id == corpus.seizures[0].meta.record_id
    seizures = generate("seizure", count=5, seed=7, originator="MEX-FGR")

The data is invented: real places and firearm makes, fictional people, cases and licensees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from pydantic import ValidationError

from exchange.errors import RecordValidationError
from exchange.records._registry import RECORD_TYPE_NAMES
from exchange.records._sample_base import SAMPLE_EPOCH, Builder, lang_of
from exchange.records._sample_data import HEADSTAMPS, HIDING_PLACES
from exchange.records._sample_links import ballistic_pair, intel_report, licensee_chain
from exchange.records._types import agency_country
from exchange.records.ballistic import BallisticRecord
from exchange.records.common import ExchangeRecord, PersonRef, PersonRole
from exchange.records.handling import AgencyRef, Caveat, Tlp
from exchange.records.intel import IntelligenceReport
from exchange.records.seizure import (
    Accessory,
    AccessoryKind,
    AmmunitionLot,
    Conveyance,
    ConveyanceKind,
    SeizureContext,
    SeizureRecord,
)
from exchange.records.trace import (
    LicenseeRef,
    TracePriority,
    TraceRequest,
    TraceResponse,
    TraceStatus,
)

__all__ = ["SAMPLE_EPOCH", "SampleCorpus", "generate", "generate_corpus"]

MAX_SAMPLE_COUNT = 10_000


@dataclass(frozen=True)
class SampleCorpus:
    """Records of all five families generated together from one seed."""

    seizures: tuple[SeizureRecord, ...]
    trace_requests: tuple[TraceRequest, ...]
    trace_responses: tuple[TraceResponse, ...]
    ballistic: tuple[BallisticRecord, ...]
    intel: tuple[IntelligenceReport, ...]

    def of_type(self, name: str) -> tuple[ExchangeRecord, ...]:
        """The records of one family, by CLI name (``"seizure"``, ``"trace-request"``, ...).

        Raises:
            RecordValidationError: ``name`` is not a record type name.
        """
        families: dict[str, tuple[ExchangeRecord, ...]] = {
            "seizure": self.seizures,
            "trace-request": self.trace_requests,
            "trace-response": self.trace_responses,
            "ballistic": self.ballistic,
            "intel": self.intel,
        }
        if name not in families:
            raise RecordValidationError(
                f"unknown record type {name!r}; expected one of {', '.join(RECORD_TYPE_NAMES)}"
            )
        return families[name]

    def records(self) -> tuple[ExchangeRecord, ...]:
        """Every record, family by family."""
        return tuple(r for name in RECORD_TYPE_NAMES for r in self.of_type(name))


def _seizure(b: Builder, request_ids: list[str]) -> tuple[SeizureRecord, list[int]]:
    rng = b.rng
    info = b.place_info(rng.choices(("MEX", "USA"), (6, 4))[0])
    seizing = b.agency_ref(b.agency_for(info))
    originator = b.originator(seizing)
    lang = lang_of(originator)
    # Seizures fall in the second half of the sample year, so that the crimes their firearms
    # were used in (ballistic records, up to 200 days earlier) still follow SAMPLE_EPOCH.
    seized_at = b.moment(SAMPLE_EPOCH + timedelta(days=200), max_days=150.0)
    if info.port_of_entry and seizing.agency_id == "USA-CBP":
        context = SeizureContext.PORT_OF_ENTRY_OUTBOUND  # southbound, leaving the US
    elif info.port_of_entry and info.country == "MEX" and rng.random() < 0.5:
        context = SeizureContext.PORT_OF_ENTRY_INBOUND
    else:
        context = rng.choice(
            (
                SeizureContext.CHECKPOINT,
                SeizureContext.CRIME_SCENE,
                SeizureContext.SEARCH_WARRANT,
                SeizureContext.TRAFFIC_STOP,
            )
        )
    firearms = [b.firearm() for _ in range(rng.choices((1, 2, 3, 5, 8, 24), (5, 4, 3, 2, 1, 1))[0])]
    calibres = sorted({f.caliber for f in firearms})
    ammunition = [
        AmmunitionLot(
            caliber=c,
            quantity=rng.choice((50, 100, 250, 500, 1000, 2480)),
            headstamp=rng.choice(HEADSTAMPS[c]),
        )
        for c in calibres
    ]
    accessories = [
        Accessory(kind=AccessoryKind.MAGAZINE, quantity=len(firearms) * rng.randrange(2, 6))
    ]
    if rng.random() < 0.2:
        accessories.append(
            Accessory(
                kind=AccessoryKind.CONVERSION_DEVICE,
                quantity=1,
                description="auto sear" if lang == "en-US" else "dispositivo de conversión",
            )
        )
    persons = [
        b.person(rng.choice((PersonRole.POSSESSOR, PersonRole.SUSPECT)), lang)
        for _ in range(rng.choices((0, 1, 2), (3, 5, 2))[0])
    ]
    caveats = {Caveat.LAW_ENFORCEMENT_SENSITIVE} | ({Caveat.PERSONAL_DATA} if persons else set())
    hiding = rng.choice(HIDING_PLACES["es" if lang == "es-MX" else "en"])
    rounds = sum(a.quantity for a in ammunition)
    if lang == "es-MX":
        narrative = (
            f"En {info.locality}, {info.admin_area}, elementos de "
            f"{seizing.name or seizing.agency_id} aseguraron {len(firearms)} arma(s) de fuego "
            f"y {rounds} cartuchos útiles "
            f"({', '.join(calibres)}), ocultos en {hiding}. Se dio vista al Ministerio Público "
            "de la Federación."
        )
    else:
        narrative = (
            f"In {info.locality}, {info.admin_area}, {seizing.name or seizing.agency_id} seized "
            f"{len(firearms)} firearm(s) and {rounds} rounds ({', '.join(calibres)}) concealed "
            f"in {hiding}."
        )
    traced = [i for i, f in enumerate(firearms) if f.serial_number is not None][:2] or [0]
    request_ids.extend(b.uuid() for _ in traced)
    record = SeizureRecord(
        meta=b.meta(
            originator,
            seized_at + timedelta(hours=rng.randrange(2, 48)),
            [b.case_ref(seizing, info)],
        ),
        handling=b.handling(originator, caveats=caveats),
        seizure_id=f"{seizing.agency_id}-SEZ-{b.number():06d}",
        seized_at=seized_at,
        location=b.place(info),
        seizing_agency=seizing,
        context=context,
        operation_ref=f"ESPEJO-2026-{rng.randrange(1, 13):02d}" if rng.random() < 0.3 else None,
        offense_codes=["LFAFE-84", "LFAFE-83"] if info.country == "MEX" else ["18 USC 554"],
        firearms=firearms,
        ammunition=ammunition,
        accessories=accessories,
        persons=persons,
        evidence=[b.evidence(seizing, "EVD") for _ in range(min(len(firearms), 3))],
        trace_request_ids=request_ids[-len(traced) :],
        narrative=narrative,
        conveyance=Conveyance(
            kind=ConveyanceKind.PRIVATE_VEHICLE if info.port_of_entry else ConveyanceKind.OTHER,
        ),
    )
    return record, traced


def _trace_request(b: Builder, seizure: SeizureRecord, index: int, record_id: str) -> TraceRequest:
    rng = b.rng
    requester = seizure.seizing_agency if b.override is None else b.override
    if requester.ncic_ori is None:
        # An --originator outside the table: derive a stand-in ORI from its id.
        ori = "".join(ch for ch in requester.agency_id if ch.isalnum())[:9].ljust(9, "0")
        requester = requester.model_copy(update={"ncic_ori": ori})
    originator = b.originator(requester)
    firearm = seizure.firearms[index]
    urgent = rng.random() < 0.15
    lang = lang_of(originator)
    possessor = next((p for p in seizure.persons if p.role is PersonRole.POSSESSOR), None)
    caveats = {Caveat.LAW_ENFORCEMENT_SENSITIVE} | ({Caveat.PERSONAL_DATA} if possessor else set())
    recovered = seizure.seized_at.date()
    return TraceRequest(
        meta=b.meta(
            originator,
            seizure.meta.created_at + timedelta(days=rng.randrange(1, 10)),
            seizure.meta.case_refs,
            record_id,
        ),
        # A trace goes to ATF's National Tracing Center, so it is always binational.
        handling=b.handling(
            originator,
            caveats=caveats,
            min_tlp=Tlp.AMBER,
            binational=True,
            agencies=["USA-ATF", requester.agency_id],
        ),
        request_date=recovered + timedelta(days=rng.randrange(1, 15)),
        priority=TracePriority.URGENT if urgent else TracePriority.ROUTINE,
        urgency_justification=(
            (
                "Homicidio con arma de fuego; persona detenida."
                if lang == "es-MX"
                else "Firearm used in a homicide; suspect in custody."
            )
            if urgent
            else None
        ),
        special_instructions=(
            "Favor de informar la cadena de distribución completa y ventas múltiples."
            if lang == "es-MX"
            else "Report the full distribution chain and any multiple sales."
        ),
        crime_code=rng.choice(("5212", "5299", "5207")),
        project_code="SWB-2026" if rng.random() < 0.5 else None,
        requesting_agency=requester,
        agency_case_number=seizure.meta.case_refs[0].case_number,
        requesting_officer=f"Badge {rng.randrange(1000, 9999)}",
        firearm=firearm,
        recovery_date=recovered,
        recovery_location=seizure.location,
        possessor=possessor,
        seizure_record_id=seizure.meta.record_id,
    )


def _trace_response(b: Builder, request: TraceRequest) -> TraceResponse:
    rng = b.rng
    atf = b.originator(
        AgencyRef(
            agency_id="USA-ATF",
            country="USA",
            name="Bureau of Alcohol, Tobacco, Firearms and Explosives",
            ncic_ori="DCATF0000",
            unit="National Tracing Center",
        )
    )
    firearm = request.firearm
    reason: str | None
    if firearm.serial_number is None:
        status, reason = TraceStatus.NOT_TRACEABLE, "Serial number obliterated and not restored"
    else:
        status = rng.choices(
            (TraceStatus.COMPLETED, TraceStatus.INCOMPLETE, TraceStatus.PENDING), (8, 1, 1)
        )[0]
        reason = {
            TraceStatus.INCOMPLETE: "No record of first retail sale at the licensee",
            TraceStatus.PENDING: "Awaiting out-of-business records",
        }.get(status)
    chain: list[LicenseeRef] = []
    retail: LicenseeRef | None = None
    sale_date: date | None = None
    purchaser: PersonRef | None = None
    ttc: int | None = None
    if status is TraceStatus.COMPLETED:
        chain, retail = licensee_chain(b, firearm)
        # Time-to-crime: a third under a year, a trafficking indicator under about 3 years.
        ttc = rng.choice(
            (rng.randrange(12, 365), rng.randrange(365, 1095), rng.randrange(1095, 4000))
        )
        sale_date = request.recovery_date - timedelta(days=ttc)
        purchaser = b.person(PersonRole.PURCHASER, "en-US")
    caveats = {
        Caveat.TRACE_DATA_RESTRICTED,
        Caveat.LAW_ENFORCEMENT_SENSITIVE,
        Caveat.NO_THIRD_PARTY_DISSEMINATION,
    }
    if purchaser is not None:
        caveats.add(Caveat.PERSONAL_DATA)
    number = f"T{2026_0000000 + b.number()}"
    multiple = status is TraceStatus.COMPLETED and rng.random() < 0.25
    return TraceResponse(
        meta=b.meta(
            atf,
            request.meta.created_at + timedelta(days=rng.randrange(2, 30)),
            request.meta.case_refs,
        ),
        # Keep or tighten the request's restrictions: same countries, same named agencies.
        handling=b.handling(
            atf,
            caveats=caveats,
            min_tlp=max(Tlp.AMBER, request.handling.tlp, key=lambda t: t.rank),
            binational=len(request.handling.releasable_to) > 1,
            agencies=["USA-ATF", request.requesting_agency.agency_id],
        ),
        request_record_id=request.meta.record_id,
        trace_number=number,
        status=status,
        status_reason=reason,
        manufacturer_or_importer=firearm.importer or firearm.manufacturer,
        distribution_chain=chain,
        retail_licensee=retail,
        first_retail_sale_date=sale_date,
        purchaser=purchaser,
        time_to_crime_days=ttc,
        multiple_sale=multiple,
        related_trace_numbers=[f"T{2026_0000000 + b.number()}"] if multiple else [],
    )


def generate_corpus(
    seed: int = 0, *, cases: int = 3, originator: str | None = None
) -> SampleCorpus:
    """Generate records of all five families that reference each other.

    Each case yields one seizure, a trace request and response for up to two of its
    firearms, a pair of cross-border ballistic records (a Mexican and a US crime scene)
    linked to each other, and one intelligence report citing all of them.

    Args:
        seed: the random seed; the same seed gives the same corpus.
        cases: how many cases, 1 to 10 000.
        originator: an agency id (``"MEX-FGR"``) to originate every record; default varies.

    Returns:
        The corpus; every family has at least ``cases`` records.

    Raises:
        RecordValidationError: ``originator`` is not a valid agency id.
        ValueError: ``cases`` is out of range.
    """
    if not 1 <= cases <= MAX_SAMPLE_COUNT:
        raise ValueError(f"got cases={cases}, expected 1 to {MAX_SAMPLE_COUNT}")
    override = None
    if originator is not None:
        try:
            override = AgencyRef(agency_id=originator, country=agency_country(originator))
        except ValidationError as exc:
            raise RecordValidationError(
                f"originator {originator!r}: {exc.errors(include_url=False)[0]['msg']}"
            ) from exc
    b = Builder(seed, override)
    seizures, requests, responses, ballistic, intel = [], [], [], [], []
    for _ in range(cases):
        ids: list[str] = []
        seizure, traced = _seizure(b, ids)
        seizures.append(seizure)
        case_requests = [
            _trace_request(b, seizure, i, rid) for i, rid in zip(traced, ids, strict=True)
        ]
        case_responses = [_trace_response(b, r) for r in case_requests]
        pair = ballistic_pair(b, seizure)
        requests += case_requests
        responses += case_responses
        ballistic += pair
        intel.append(intel_report(b, seizure, case_requests, case_responses, pair))
    return SampleCorpus(
        tuple(seizures), tuple(requests), tuple(responses), tuple(ballistic), tuple(intel)
    )


def generate(
    type_name: str, *, count: int, seed: int = 0, originator: str | None = None
) -> list[ExchangeRecord]:
    """Generate ``count`` records of one family.

    The records come from :func:`generate_corpus` with ``cases=count``, so records of
    different families generated with the same seed and count reference each other.

    Args:
        type_name: one of :data:`~exchange.records.RECORD_TYPE_NAMES`.
        count: how many records, 1 to 10 000.
        seed: the random seed.
        originator: an agency id to originate every record.

    Returns:
        ``count`` validated records.

    Raises:
        RecordValidationError: unknown ``type_name`` or invalid ``originator``.
        ValueError: ``count`` is out of range.
    """
    if type_name not in RECORD_TYPE_NAMES:
        raise RecordValidationError(
            f"unknown record type {type_name!r}; expected one of {', '.join(RECORD_TYPE_NAMES)}"
        )
    corpus = generate_corpus(seed, cases=count, originator=originator)
    return list(corpus.of_type(type_name)[:count])
