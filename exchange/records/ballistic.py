"""``BallisticRecord``: a ballistic exhibit with correlations and links (NIBIN/IBIS style).

A *lead* is an unconfirmed correlation; a *hit* is confirmed by an examiner on the physical
items, so only a hit may carry an AFTE identification.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import ClassVar, Self

from pydantic import Field, model_validator

from exchange.records._model import RecordModel
from exchange.records._types import (
    AgencyId,
    Label,
    Sha256Digest,
    ShortText,
    UtcDatetime,
    UuidStr,
)
from exchange.records.common import CaseRef, EvidenceItemRef, ExchangeRecord, Place

__all__ = [
    "Acquisition",
    "AfteConclusion",
    "Artifact",
    "BallisticLink",
    "BallisticRecord",
    "BallisticRegion",
    "BreechFacePattern",
    "ClassCharacteristics",
    "CorrelationCandidate",
    "ExhibitOrigin",
    "ExhibitType",
    "FiringPinShape",
    "LinkStatus",
    "Twist",
]


class ExhibitType(StrEnum):
    """Kinds of ballistic exhibit."""

    CARTRIDGE_CASE = "CARTRIDGE_CASE"
    BULLET = "BULLET"
    BULLET_FRAGMENT = "BULLET_FRAGMENT"
    TEST_FIRE_CARTRIDGE_CASE = "TEST_FIRE_CARTRIDGE_CASE"
    TEST_FIRE_BULLET = "TEST_FIRE_BULLET"
    OTHER = "OTHER"


class ExhibitOrigin(StrEnum):
    """Where an exhibit came from."""

    CRIME_SCENE = "CRIME_SCENE"
    TEST_FIRE = "TEST_FIRE"
    OTHER = "OTHER"


class FiringPinShape(StrEnum):
    """Firing-pin impression shapes."""

    CIRCULAR = "CIRCULAR"
    ELLIPTICAL = "ELLIPTICAL"
    RECTANGULAR = "RECTANGULAR"
    HEMISPHERICAL = "HEMISPHERICAL"
    OTHER = "OTHER"


class BreechFacePattern(StrEnum):
    """Breech-face mark patterns."""

    PARALLEL = "PARALLEL"
    ARCHED = "ARCHED"
    GRANULAR = "GRANULAR"
    CROSSHATCH = "CROSSHATCH"
    SMOOTH = "SMOOTH"
    OTHER = "OTHER"


class Twist(StrEnum):
    """Rifling twist direction."""

    RIGHT = "RIGHT"
    LEFT = "LEFT"


class BallisticRegion(StrEnum):
    """Imaged mark regions."""

    BREECH_FACE = "BREECH_FACE"
    FIRING_PIN = "FIRING_PIN"
    EJECTOR = "EJECTOR"
    LAND_ENGRAVED_AREA = "LAND_ENGRAVED_AREA"
    OTHER = "OTHER"


class ClassCharacteristics(RecordModel):
    """Class characteristics shared by every exhibit fired from one kind of firearm."""

    caliber: Label
    headstamp: ShortText | None = None
    firing_pin_shape: FiringPinShape | None = None
    breech_face_pattern: BreechFacePattern | None = None
    ejector_mark_clock: int | None = Field(default=None, ge=1, le=12)
    lands_grooves: int | None = Field(default=None, ge=0, le=64)
    twist: Twist | None = None


class Artifact(RecordModel):
    """Claim check for an image or X3P file stored outside the bus."""

    sha256: Sha256Digest
    media_type: Label
    size_bytes: int = Field(ge=0, le=2**63 - 1)
    uri: ShortText


class Acquisition(RecordModel):
    """One imaging of the exhibit at a correlation site."""

    site: AgencyId
    instrument: ShortText
    operator: ShortText | None = None
    acquired_at: UtcDatetime
    regions: list[BallisticRegion] = Field(default_factory=list, max_length=8)
    artifacts: list[Artifact] = Field(default_factory=list, max_length=32)


class CorrelationCandidate(RecordModel):
    """A correlator candidate: a ranking, not a finding."""

    exhibit_id: Label
    site: AgencyId
    region: BallisticRegion
    rank: int = Field(ge=1, le=10_000)
    score: float = Field(ge=0.0, allow_inf_nan=False)


class LinkStatus(StrEnum):
    """Review state of a link."""

    POTENTIAL = "POTENTIAL"
    LEAD = "LEAD"
    HIT_CONFIRMED = "HIT_CONFIRMED"
    REJECTED = "REJECTED"


class AfteConclusion(StrEnum):
    """AFTE range of conclusions."""

    IDENTIFICATION = "IDENTIFICATION"
    INCONCLUSIVE = "INCONCLUSIVE"
    ELIMINATION = "ELIMINATION"
    UNSUITABLE = "UNSUITABLE"


class BallisticLink(RecordModel):
    """A link from this exhibit to another, possibly in another country's case.

    Raises:
        pydantic.ValidationError: a confirmed hit lacks an examiner, laboratory or AFTE
            identification, or an unconfirmed link claims an identification.
    """

    linked_exhibit_id: Label
    linked_record_id: UuidStr | None = None
    linked_case_ref: CaseRef | None = None
    status: LinkStatus
    reviewed_by: ShortText | None = None
    reviewed_at: UtcDatetime | None = None
    afte_conclusion: AfteConclusion | None = None
    laboratory: ShortText | None = None

    @model_validator(mode="after")
    def _hit_is_confirmed(self) -> Self:
        if self.status is LinkStatus.HIT_CONFIRMED:
            if self.afte_conclusion is not AfteConclusion.IDENTIFICATION:
                raise ValueError("a HIT_CONFIRMED link needs afteConclusion IDENTIFICATION")
            if self.reviewed_by is None or self.laboratory is None:
                raise ValueError("a HIT_CONFIRMED link needs reviewedBy and laboratory")
        elif self.afte_conclusion is AfteConclusion.IDENTIFICATION:
            raise ValueError("an IDENTIFICATION is only valid on a HIT_CONFIRMED link")
        return self


class BallisticRecord(ExchangeRecord):
    """A ballistic exhibit with its imaging, correlator candidates and reviewed links.

    Raises:
        pydantic.ValidationError: a test-fire exhibit does not name its firearm.
    """

    record_type_name: ClassVar[str] = "ballistic"
    schema_name: ClassVar[str] = "exchange.records.BallisticRecord"

    exhibit: EvidenceItemRef
    exhibit_type: ExhibitType
    origin: ExhibitOrigin
    test_fired_firearm_uid: UuidStr | None = None
    event_date: date
    event_location: Place
    offense_codes: list[Label] = Field(default_factory=list, max_length=32)
    class_characteristics: ClassCharacteristics
    acquisitions: list[Acquisition] = Field(default_factory=list, max_length=16)
    correlation_candidates: list[CorrelationCandidate] = Field(default_factory=list, max_length=200)
    links: list[BallisticLink] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _test_fire(self) -> Self:
        if self.origin is ExhibitOrigin.TEST_FIRE and self.test_fired_firearm_uid is None:
            raise ValueError("a TEST_FIRE exhibit needs testFiredFirearmUid")
        return self
