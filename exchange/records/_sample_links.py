"""Sample records that link cases: ballistic pairs, licensee chains, intelligence reports.

Unstable: not public API; used by :mod:`exchange.records.sample`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from exchange.records._sample_base import Builder, lang_of
from exchange.records._sample_data import AGENCIES, HEADSTAMPS, LICENSEES, PLACES, PlaceInfo
from exchange.records.ballistic import (
    Acquisition,
    AfteConclusion,
    Artifact,
    BallisticLink,
    BallisticRecord,
    BallisticRegion,
    BreechFacePattern,
    ClassCharacteristics,
    CorrelationCandidate,
    ExhibitOrigin,
    ExhibitType,
    FiringPinShape,
    LinkStatus,
    Twist,
)
from exchange.records.common import ExchangeRecord, Firearm, Place
from exchange.records.handling import (
    AgencyRef,
    Caveat,
    Handling,
    PermittedUse,
    Retention,
    RetentionDisposition,
)
from exchange.records.intel import (
    Indicator,
    IntelligenceReport,
    RecordFamily,
    RecordRef,
    Relationship,
    Sighting,
    SourceReliability,
    ThreatActor,
)
from exchange.records.seizure import SeizureRecord
from exchange.records.trace import LicenseeRef, LicenseeRole, TraceRequest, TraceResponse

__all__ = ["ballistic_pair", "intel_report", "licensee_chain"]

# Twin cities across the border, where one firearm is plausibly used on both sides.
_TWINS = (
    ("Ciudad Juárez", "El Paso"),
    ("Nuevo Laredo", "Laredo"),
    ("Reynosa", "McAllen"),
    ("Nogales", "Tucson"),
    ("Agua Prieta", "Tucson"),
)
_US_LABS = {"El Paso": "USA-EPPD", "Tucson": "USA-TPD"}


def _place_named(country: str, locality: str) -> PlaceInfo:
    return next(p for p in PLACES if p.country == country and p.locality == locality)


def _agency(agency_id: str) -> AgencyRef:
    info = next(a for a in AGENCIES if a.agency_id == agency_id)
    return AgencyRef(
        agency_id=info.agency_id,
        country=info.agency_id[:3],
        name=info.name,
        ncic_ori=info.ncic_ori,
        unit=info.units[-1],
    )


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


def _characteristics(b: Builder, firearm: Firearm) -> ClassCharacteristics:
    glock_like = firearm.manufacturer_code in ("GLK", "PMF")
    return ClassCharacteristics(
        caliber=firearm.caliber,
        headstamp=b.rng.choice(HEADSTAMPS[firearm.caliber]),
        # Glock-pattern pistols leave a rectangular firing-pin impression.
        firing_pin_shape=FiringPinShape.RECTANGULAR
        if glock_like
        else b.rng.choice(
            (FiringPinShape.CIRCULAR, FiringPinShape.HEMISPHERICAL, FiringPinShape.ELLIPTICAL)
        ),
        breech_face_pattern=b.rng.choice(list(BreechFacePattern)),
        ejector_mark_clock=b.rng.randrange(1, 13),
        lands_grooves=6,
        twist=Twist.LEFT if firearm.manufacturer_code == "COL" else Twist.RIGHT,
    )


def _acquisition(b: Builder, site: AgencyRef, after: datetime, record: str) -> Acquisition:
    host = site.agency_id.lower()
    return Acquisition(
        site=site.agency_id,
        instrument="IBIS BRASSTRAX-3D",
        operator=f"Tech {b.number()}",
        acquired_at=b.moment(after, max_days=20.0),  # imaged within weeks of the event
        regions=[BallisticRegion.BREECH_FACE, BallisticRegion.FIRING_PIN, BallisticRegion.EJECTOR],
        artifacts=[
            Artifact(
                sha256=b.digest(),
                media_type="application/x-x3p",
                size_bytes=b.rng.randrange(2_000_000, 40_000_000),
                uri=f"https://evidence.{host}.example/x3p/{record}.x3p",
            ),
        ],
    )


def ballistic_pair(b: Builder, seizure: SeizureRecord) -> list[BallisticRecord]:
    """Two crime-scene exhibits, one per country, linked to each other, plus sometimes the
    test fire of a firearm from ``seizure`` that the correlator ranked against them."""
    rng = b.rng
    firearm = seizure.firearms[0]
    mex_place, usa_place = (
        _place_named(c, n) for c, n in zip(("MEX", "USA"), rng.choice(_TWINS), strict=True)
    )
    labs = [
        b.agency_ref(b.agency_for(mex_place, lab=True)),
        _agency(_US_LABS.get(usa_place.locality, "USA-ATF")),
    ]
    labs = [b.override or lab for lab in labs]
    ids = [b.uuid(), b.uuid()]
    cases = [b.case_ref(labs[0], mex_place), b.case_ref(labs[1], usa_place)]
    exhibits = [b.evidence(labs[0], "BAL"), b.evidence(labs[1], "NIBIN")]
    status = rng.choices(
        (LinkStatus.LEAD, LinkStatus.HIT_CONFIRMED, LinkStatus.POTENTIAL), (6, 3, 1)
    )[0]
    hit = status is LinkStatus.HIT_CONFIRMED
    records = []
    for side, place in enumerate((mex_place, usa_place)):
        other = 1 - side
        event_at = seizure.seized_at - timedelta(days=rng.randrange(20, 200))
        caveats = {Caveat.LAW_ENFORCEMENT_SENSITIVE} | (
            set() if hit else {Caveat.INVESTIGATIVE_LEAD_ONLY}
        )
        link = BallisticLink(
            linked_exhibit_id=exhibits[other].exhibit_id,
            linked_record_id=ids[other],
            linked_case_ref=cases[other],
            status=status,
            reviewed_by=f"Examiner {b.number()}" if status is not LinkStatus.POTENTIAL else None,
            reviewed_at=event_at + timedelta(days=rng.randrange(30, 90)) if hit else None,
            afte_conclusion=AfteConclusion.IDENTIFICATION if hit else None,
            laboratory=(labs[side].name or labs[side].agency_id) if hit else None,
        )
        records.append(
            BallisticRecord(
                meta=b.meta(
                    labs[side],
                    event_at + timedelta(days=rng.randrange(2, 20)),
                    [cases[side]],
                    ids[side],
                ),
                handling=b.handling(labs[side], caveats=caveats, binational=True),
                exhibit=exhibits[side],
                exhibit_type=ExhibitType.CARTRIDGE_CASE,
                origin=ExhibitOrigin.CRIME_SCENE,
                event_date=event_at.date(),
                event_location=b.place(place),
                offense_codes=["CP-FED-302"] if side == 0 else ["18 USC 924(c)"],
                class_characteristics=_characteristics(b, firearm),
                acquisitions=[_acquisition(b, labs[side], event_at, ids[side])],
                correlation_candidates=[
                    CorrelationCandidate(
                        exhibit_id=exhibits[other].exhibit_id,
                        site=labs[other].agency_id,
                        region=BallisticRegion.BREECH_FACE,
                        rank=1,
                        score=round(rng.uniform(0.82, 0.99), 3),
                    ),
                    CorrelationCandidate(
                        exhibit_id=f"NIBIN-{b.number():06d}",
                        site="USA-ATF",
                        region=BallisticRegion.FIRING_PIN,
                        rank=2,
                        score=round(rng.uniform(0.3, 0.6), 3),
                    ),
                ],
                links=[link],
            )
        )
    if rng.random() < 0.5:
        # The seized firearm is test fired; the correlator proposes the Mexican exhibit.
        lab = b.override or seizure.handling.originator
        records.append(
            BallisticRecord(
                meta=b.meta(
                    lab,
                    seizure.seized_at + timedelta(days=rng.randrange(5, 30)),
                    seizure.meta.case_refs,
                ),
                handling=b.handling(lab, caveats={Caveat.INVESTIGATIVE_LEAD_ONLY}, binational=True),
                exhibit=b.evidence(lab, "TF"),
                exhibit_type=ExhibitType.TEST_FIRE_CARTRIDGE_CASE,
                origin=ExhibitOrigin.TEST_FIRE,
                test_fired_firearm_uid=firearm.firearm_uid,
                event_date=seizure.seized_at.date(),
                event_location=seizure.location,
                offense_codes=seizure.offense_codes,
                class_characteristics=_characteristics(b, firearm),
                acquisitions=[_acquisition(b, lab, seizure.seized_at, seizure.meta.record_id)],
                links=[
                    BallisticLink(
                        linked_exhibit_id=exhibits[0].exhibit_id,
                        linked_record_id=ids[0],
                        linked_case_ref=cases[0],
                        status=LinkStatus.LEAD,
                    )
                ],
            )
        )
    return records


def _derived_handling(originator: AgencyRef, sources: list[ExchangeRecord]) -> Handling:
    # Re-publishing derived data keeps or tightens every source's restrictions.
    handlings = [s.handling for s in sources]
    countries = [
        c for c in handlings[0].releasable_to if all(c in h.releasable_to for h in handlings)
    ]
    narrowed = [h.releasable_to_agencies for h in handlings if h.releasable_to_agencies is not None]
    agencies = None
    if narrowed:
        # Never empty: every source was released to the originator (see intel_report).
        agencies = [a for a in narrowed[0] if all(a in n for n in narrowed) and a[:3] in countries]
    caveats = {c for h in handlings for c in h.caveats} | {Caveat.INVESTIGATIVE_LEAD_ONLY}
    markings = {(m.country, m.marking): m for h in handlings for m in h.national_markings}
    return Handling(
        tlp=max((h.tlp for h in handlings), key=lambda t: t.rank),
        releasable_to=[originator.country, *(c for c in countries if c != originator.country)],
        releasable_to_agencies=agencies,
        originator=originator,
        caveats=sorted(caveats),
        national_markings=list(markings.values()),
        permitted_uses=[PermittedUse.INTELLIGENCE_ANALYSIS, PermittedUse.CRIMINAL_INVESTIGATION],
        retention=Retention(
            policy=f"{originator.agency_id}-INTEL-25Y",
            disposition=RetentionDisposition.REVIEW,
            retain_until=handlings[0].retention.retain_until,
        ),
    )


def intel_report(
    b: Builder,
    seizure: SeizureRecord,
    requests: list[TraceRequest],
    responses: list[TraceResponse],
    ballistic: list[BallisticRecord],
) -> IntelligenceReport:
    """A STIX-aligned report citing every record of one case."""
    rng = b.rng
    originator = seizure.handling.originator
    spanish = lang_of(originator) == "es-MX"
    # An analyst can only derive from what was released to them.
    sources: list[ExchangeRecord] = [
        s
        for s in (seizure, *requests, *responses, *ballistic)
        if s.handling.is_releasable_to(originator.agency_id)
    ]
    published = max(s.meta.created_at for s in sources) + timedelta(days=rng.randrange(1, 6))
    identity, actor = f"identity--{b.uuid()}", f"threat-actor--{b.uuid()}"
    cell = f"Célula Norte-{rng.randrange(1, 40)}"
    indicators = [
        Indicator(
            stix_id=f"indicator--{b.uuid()}",
            name=f"{r.firearm.manufacturer} {r.firearm.model}",
            pattern=f"[x-exchange-firearm:serial_number = '{r.firearm.serial_number}']",
            valid_from=published,
            indicator_types=["attribution"],
        )
        for r in requests
        if r.firearm.serial_number
    ] + [
        Indicator(
            stix_id=f"indicator--{b.uuid()}",
            name=t.retail_licensee.name,
            pattern=f"[x-exchange-licensee:license_number = '{t.retail_licensee.license_number}']",
            valid_from=published,
            indicator_types=["anomalous-activity"],
        )
        for t in responses
        if t.retail_licensee is not None
    ]
    ttc = [t.time_to_crime_days for t in responses if t.time_to_crime_days is not None]
    where = seizure.location.locality or seizure.location.country
    if spanish:
        name = f"Red de tráfico de armas en {where}: {cell}"
        description = (
            f"Análisis del aseguramiento {seizure.seizure_id}: {len(requests)} rastreo(s), "
            f"tiempo mínimo al delito {min(ttc, default=0)} días, vínculo balístico binacional."
        )
    else:
        name = f"Firearms trafficking network around {where}: {cell}"
        description = (
            f"Analysis of seizure {seizure.seizure_id}: {len(requests)} trace(s), shortest "
            f"time-to-crime {min(ttc, default=0)} days, binational ballistic link."
        )
    families = {
        SeizureRecord: RecordFamily.SEIZURE,
        TraceRequest: RecordFamily.TRACE_REQUEST,
        TraceResponse: RecordFamily.TRACE_RESPONSE,
        BallisticRecord: RecordFamily.BALLISTIC,
    }
    return IntelligenceReport(
        meta=b.meta(originator, published, seizure.meta.case_refs),
        handling=_derived_handling(originator, sources),
        stix_id=f"report--{b.uuid()}",
        name=name,
        description=description,
        report_types=["threat-actor", "indicator"],
        published=published,
        created_by_ref=identity,
        confidence=rng.randrange(40, 86),
        source_reliability=rng.choice((SourceReliability.B, SourceReliability.C)),
        information_credibility=rng.randrange(2, 4),
        threat_actors=[
            ThreatActor(stix_id=actor, name=cell, aliases=[f"CN-{rng.randrange(100, 999)}"])
        ],
        indicators=indicators,
        relationships=[
            Relationship(
                stix_id=f"relationship--{b.uuid()}",
                relationship_type="indicates",
                source_ref=i.stix_id,
                target_ref=actor,
            )
            for i in indicators
        ],
        sightings=[
            Sighting(
                stix_id=f"sighting--{b.uuid()}",
                sighting_of_ref=i.stix_id,
                first_seen=seizure.seized_at,
                last_seen=seizure.seized_at,
                count=1,
                where_sighted_refs=[identity],
            )
            for i in indicators[:1]
        ],
        record_refs=[
            RecordRef(record_id=s.meta.record_id, record_family=families[type(s)]) for s in sources
        ],
    )
