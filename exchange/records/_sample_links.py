"""Sample ballistic records that link crime scenes on both sides of the border.

Unstable: not public API; used by :mod:`exchange.records.sample`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from exchange.records._sample_base import Builder
from exchange.records._sample_data import AGENCIES, HEADSTAMPS, PLACES, PlaceInfo
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
from exchange.records.common import Firearm
from exchange.records.handling import AgencyRef, Caveat
from exchange.records.seizure import SeizureRecord

__all__ = ["ballistic_pair"]

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
