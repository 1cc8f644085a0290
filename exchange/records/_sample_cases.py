"""Sample records of one case: a seizure, its trace requests and their responses.

Unstable: not public API; used by :mod:`exchange.records.sample`.
"""

from __future__ import annotations

from datetime import date, timedelta

from exchange.records._sample_base import SAMPLE_EPOCH, Builder, lang_of
from exchange.records._sample_data import HEADSTAMPS, HIDING_PLACES, LICENSEES
from exchange.records.common import Firearm, PersonRef, PersonRole, Place
from exchange.records.handling import AgencyRef, Caveat, Tlp
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
    LicenseeRole,
    TracePriority,
    TraceRequest,
    TraceResponse,
    TraceStatus,
)

__all__ = ["licensee_chain", "seizure_record", "trace_request", "trace_response"]


def licensee_chain(b: Builder, firearm: Firearm) -> tuple[list[LicenseeRef], LicenseeRef]:
    """A manufacturer/importer -> distributor -> retailer chain ending at a border-state FFL."""
    number, name, city, state, lat, lon = b.rng.choice(LICENSEES)
    retail = LicenseeRef(
        license_number=number,
        name=name,
        role=LicenseeRole.RETAILER,
        location=Place(country="USA", admin_area=state, locality=city, latitude=lat, longitude=lon),
    )
    first = LicenseeRef(
        license_number=f"{b.rng.randrange(1, 10)}-{b.rng.randrange(10, 99)}-"
        f"{b.rng.randrange(100, 999)}-0{b.rng.randrange(1, 9)}-{b.number():05d}",
        name=firearm.importer or firearm.manufacturer,
        role=LicenseeRole.IMPORTER if firearm.importer else LicenseeRole.MANUFACTURER,
    )
    distributor = LicenseeRef(
        license_number=f"5-74-{b.rng.randrange(100, 999)}-01-{b.number():05d}",
        name="Lone Star Wholesale Distributors",
        role=LicenseeRole.DISTRIBUTOR,
    )
    return [first, distributor, retail], retail


def seizure_record(b: Builder, request_ids: list[str]) -> tuple[SeizureRecord, list[int]]:
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


def trace_request(b: Builder, seizure: SeizureRecord, index: int, record_id: str) -> TraceRequest:
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


def trace_response(b: Builder, request: TraceRequest) -> TraceResponse:
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
