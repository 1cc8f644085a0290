"""Shared building blocks of the sample generator. Unstable: not public API."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from exchange.records._sample_data import AGENCIES, FIREARMS, PLACES, AgencyInfo, PlaceInfo
from exchange.records.common import (
    CaseRef,
    EvidenceItemRef,
    Firearm,
    FirearmType,
    PersonRef,
    PersonRole,
    Place,
    RecordMeta,
    SerialStatus,
)
from exchange.records.handling import (
    AgencyRef,
    Caveat,
    Handling,
    NationalMarking,
    PermittedUse,
    Retention,
    RetentionDisposition,
    Tlp,
)

__all__ = ["SAMPLE_EPOCH", "Builder"]

#: Every generated timestamp is an offset from this instant: output never reads the clock.
SAMPLE_EPOCH = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

_GIVEN = {
    "es": ("José", "María", "Juan", "Luis", "Ana", "Carlos", "Jorge", "Guadalupe", "Rosa"),
    "en": ("Michael", "Jessica", "David", "Ashley", "Christopher", "Brandon", "Amanda"),
}
_FAMILY = {
    "es": ("García", "Hernández", "Martínez", "López", "González", "Rodríguez", "Pérez"),
    "en": ("Smith", "Johnson", "Williams", "Brown", "Davis", "Miller", "Moore"),
}


class Builder:
    """A seeded source of identifiers, times, places, agencies and handling blocks."""

    def __init__(self, seed: int, originator: AgencyRef | None) -> None:
        # Fake test data from a seeded generator, never keys or tokens: S311 does not apply.
        self.rng = random.Random(seed)  # noqa: S311
        self.override = originator
        self._serial = 0

    # Identifiers and time ------------------------------------------------------------

    def uuid(self) -> str:
        """A random (version 4) UUID drawn from the seeded generator."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def number(self) -> int:
        """A strictly increasing case/exhibit number, so generated ids never collide."""
        self._serial += 1
        return 1000 + self._serial * 7 + self.rng.randrange(7)

    def moment(self, after: datetime | None = None, *, max_days: float = 300.0) -> datetime:
        """An instant within ``max_days`` after ``after`` (default: the sample epoch)."""
        base = SAMPLE_EPOCH if after is None else after
        return base + timedelta(seconds=self.rng.randrange(600, int(max_days * 86400)))

    def digest(self) -> bytes:
        """32 random bytes standing in for a SHA-256 of a document we do not have."""
        return self.rng.randbytes(32)

    # Places and agencies -------------------------------------------------------------

    def place_info(self, country: str | None = None, *, border: bool | None = None) -> PlaceInfo:
        """A place, optionally restricted to a country and to the border region."""
        choices = [
            p
            for p in PLACES
            if (country is None or p.country == country) and (border is None or p.border == border)
        ]
        return self.rng.choice(choices or list(PLACES))

    def place(self, info: PlaceInfo) -> Place:
        """A :class:`Place` a few hundred metres from the reference point of ``info``."""
        return Place(
            country=info.country,
            admin_area=info.admin_area,
            municipality=info.municipality,
            locality=info.locality,
            latitude=round(info.latitude + self.rng.uniform(-0.02, 0.02), 5),
            longitude=round(info.longitude + self.rng.uniform(-0.02, 0.02), 5),
            port_of_entry=info.port_of_entry,
        )

    def agency_for(self, info: PlaceInfo, *, lab: bool = False) -> AgencyInfo:
        """A plausible agency acting at ``info``: a state agency or a federal one."""
        local = [a for a in AGENCIES if a.admin_area == info.admin_area]
        federal = [
            a for a in AGENCIES if a.agency_id.startswith(info.country) and a.admin_area is None
        ]
        if lab and local:
            return local[0]
        if info.country == "USA" and info.port_of_entry and not lab and self.rng.random() < 0.6:
            return next(a for a in AGENCIES if a.agency_id == "USA-CBP")
        return self.rng.choice(local + federal if local and self.rng.random() < 0.5 else federal)

    def agency_ref(self, info: AgencyInfo, *, unit: bool = True) -> AgencyRef:
        """The :class:`AgencyRef` of a table agency, with one of its units."""
        return AgencyRef(
            agency_id=info.agency_id,
            country=info.agency_id[:3],
            name=info.name,
            ncic_ori=info.ncic_ori,
            unit=self.rng.choice(info.units) if unit else None,
        )

    def originator(self, natural: AgencyRef) -> AgencyRef:
        """The ``--originator`` override if one was given, else ``natural``."""
        return self.override or natural

    def case_ref(self, agency: AgencyRef, info: PlaceInfo) -> CaseRef:
        """A case number in the style of the agency's country."""
        n = self.number()
        if agency.country == "MEX" and agency.agency_id.count("-") == 2:
            number = f"CI-{agency.agency_id.rsplit('-', 1)[1]}/{n:07d}/2026"  # state carpeta
        elif agency.country == "MEX":
            state = info.admin_area[:4].upper() if info.country == "MEX" else "FED"
            number = f"FED/{state}/{n:07d}/2026"  # carpeta de investigación federal
        else:
            number = f"{agency.agency_id[4:]}-{n:06d}-26"
        return CaseRef(agency_id=agency.agency_id, case_number=number)

    # People, firearms, evidence ------------------------------------------------------

    def person(self, role: PersonRole, lang: str) -> PersonRef:
        """A fictional person with only the minimal fields."""
        lang = "es" if lang.startswith("es") else "en"
        return PersonRef(
            person_uid=self.uuid(),
            role=role,
            full_name=f"{self.rng.choice(_GIVEN[lang])} {self.rng.choice(_FAMILY[lang])}",
            birth_year=self.rng.randrange(1970, 2006),
            nationality="MEX" if lang == "es" else "USA",
        )

    def firearm(self) -> Firearm:
        """A firearm from the catalogue, with a serial number in a plausible state."""
        model = self.rng.choice(FIREARMS)
        if model.privately_made:
            status, serial = SerialStatus.NONE, None
        else:
            status = self.rng.choices(
                (SerialStatus.INTACT, SerialStatus.OBLITERATED, SerialStatus.RESTORED),
                (75, 13, 12),
            )[0]
            letters = "".join(self.rng.choices("ABCDEFGHJKLMNPRSTUVWXYZ", k=3))
            serial = (
                None
                if status is SerialStatus.OBLITERATED
                else (f"{letters}{self.rng.randrange(100000, 999999)}")
            )
        return Firearm(
            firearm_uid=self.uuid(),
            serial_number=serial,
            serial_status=status,
            manufacturer=model.manufacturer,
            manufacturer_code=model.code,
            model=model.model,
            caliber=model.caliber,
            firearm_type=FirearmType(model.firearm_type),
            country_of_origin=model.origin,
            importer=model.importer,
            additional_markings=["IMPORTED BY " + model.importer.upper()] if model.importer else [],
            privately_made=model.privately_made,
            converted_to_automatic=self.rng.random() < 0.05,
        )

    def evidence(self, custodian: AgencyRef, prefix: str) -> EvidenceItemRef:
        """An exhibit with a seal number, custody log and document digests."""
        n = self.number()
        return EvidenceItemRef(
            exhibit_id=f"{prefix}-{n:06d}",
            seal_number=f"SEAL-{self.rng.randrange(10**7, 10**8)}",
            custodian=custodian,
            custody_log_ref=f"custody/{custodian.agency_id}/{n:06d}",
            digests=[self.digest() for _ in range(self.rng.randrange(1, 3))],
        )

    # Records' common blocks ----------------------------------------------------------

    def meta(
        self,
        originator: AgencyRef,
        created_at: datetime,
        cases: list[CaseRef],
        record_id: str | None = None,
    ) -> RecordMeta:
        """The ``meta`` block; the language follows the originator's country."""
        system = next(
            (a.source_system for a in AGENCIES if a.agency_id == originator.agency_id),
            f"{originator.agency_id}-RMS",
        )
        return RecordMeta(
            record_id=record_id or self.uuid(),
            created_at=created_at,
            source_system=system,
            source_record_id=f"{self.rng.randrange(10**8, 10**9)}",
            case_refs=cases,
            lang=lang_of(originator),
        )

    def handling(
        self,
        originator: AgencyRef,
        *,
        caveats: set[Caveat],
        min_tlp: Tlp = Tlp.GREEN,
        binational: bool | None = None,
        agencies: list[str] | None = None,
    ) -> Handling:
        """A valid handling block: varied TLP, releasability and caveats.

        ``binational=None`` picks national-only for about one record in seven.
        """
        both = self.rng.random() >= 0.15 if binational is None else binational
        others = [c for c in ("MEX", "USA") if c != originator.country]
        releasable = [originator.country, *(others if both else [])]
        caveats = set(caveats)
        markings = []
        if originator.country == "MEX" and self.rng.random() < 0.6:
            caveats.add(Caveat.MX_RESERVADA)
            markings.append(
                NationalMarking(
                    country="MEX",
                    marking="INFORMACIÓN RESERVADA",
                    authority=originator.name or originator.agency_id,
                    legal_basis="Art. 110, fr. VII, LFTAIP",
                )
            )
        elif originator.country == "USA" and self.rng.random() < 0.4:
            caveats.add(Caveat.US_CUI)
            markings.append(
                NationalMarking(
                    country="USA",
                    marking="CUI//LEI",
                    authority=originator.agency_id,
                    legal_basis="32 CFR 2002",
                )
            )
        if caveats & {Caveat.PERSONAL_DATA, Caveat.TRACE_DATA_RESTRICTED}:
            min_tlp = max(min_tlp, Tlp.AMBER, key=lambda t: t.rank)
        tlps = [
            t for t in (Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED) if t.rank >= min_tlp.rank
        ]
        tlp = self.rng.choices(tlps, [4, 3, 2, 1][-len(tlps) :])[0]
        if tlp is Tlp.RED and agencies is None:
            agencies = [originator.agency_id]  # TLP:RED names its individual recipients
        if agencies is not None:
            agencies = [a for a in dict.fromkeys(agencies) if a[:3] in releasable] or [
                originator.agency_id
            ]
        created = SAMPLE_EPOCH.date()
        return Handling(
            tlp=tlp,
            releasable_to=releasable,
            releasable_to_agencies=agencies,
            originator=originator,
            caveats=sorted(caveats),
            national_markings=markings,
            permitted_uses=[PermittedUse.CRIMINAL_INVESTIGATION, PermittedUse.PROSECUTION],
            retention=Retention(
                policy=f"{originator.agency_id}-EVIDENCE-10Y",
                retain_until=created.replace(year=created.year + 10),
                review_after=created.replace(year=created.year + 2),
                disposition=self.rng.choice(list(RetentionDisposition)),
                legal_hold=self.rng.random() < 0.1,
            ),
        )


def lang_of(agency: AgencyRef) -> str:
    """``es-MX`` for Mexican agencies, ``en-US`` otherwise."""
    return "es-MX" if agency.country == "MEX" else "en-US"
