"""Sample intelligence reports derived from the records of one case.

Unstable: not public API; used by :mod:`exchange.records.sample`.
"""

from __future__ import annotations

from datetime import timedelta

from exchange.records._sample_base import Builder, lang_of
from exchange.records.ballistic import BallisticRecord
from exchange.records.common import ExchangeRecord
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
from exchange.records.trace import TraceRequest, TraceResponse

__all__ = ["intel_report"]


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
    released: list[ExchangeRecord] = [
        s
        for s in (seizure, *requests, *responses, *ballistic)
        if s.handling.is_releasable_to(originator.agency_id)
    ]
    # Every other report is written for the counterpart country, so it derives only from
    # sources that country may already see (derived handling keeps every source's limits).
    counterpart = "USA" if originator.country == "MEX" else "MEX"
    shareable = [
        s
        for s in released
        if counterpart in s.handling.releasable_to and s.handling.releasable_to_agencies is None
    ]
    binational = any(s is seizure for s in shareable) and rng.random() < 0.5
    sources = shareable if binational else released
    requests = [r for r in requests if any(r is s for s in sources)]
    responses = [t for t in responses if any(t is s for s in sources)]
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
