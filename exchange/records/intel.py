"""``IntelligenceReport``: an analytic product aligned with a STIX 2.1 ``report``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Self

from pydantic import Field, model_validator

from exchange.records._model import RecordModel
from exchange.records._types import Label, LongText, ShortText, Text, UtcDatetime, UuidStr
from exchange.records.common import ExchangeRecord

__all__ = [
    "Indicator",
    "IntelligenceReport",
    "RecordFamily",
    "RecordRef",
    "Relationship",
    "Sighting",
    "SourceReliability",
    "StixId",
    "ThreatActor",
]

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _stix_id(object_type: str = r"[a-z][a-z0-9-]{1,62}") -> object:
    # STIX 2.1 section 2.9: identifier = object-type "--" UUID.
    return Field(pattern=rf"^{object_type}--{_UUID}$")


StixId = Annotated[str, _stix_id()]
"""Any STIX 2.1 identifier, ``<object-type>--<uuid>``."""


class SourceReliability(StrEnum):
    """Admiralty scale source reliability: A (reliable) .. F (cannot be judged)."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
    E = "E"
    F = "F"


class RecordFamily(StrEnum):
    """The exchange record families a report can be derived from."""

    SEIZURE = "SEIZURE"
    TRACE_REQUEST = "TRACE_REQUEST"
    TRACE_RESPONSE = "TRACE_RESPONSE"
    BALLISTIC = "BALLISTIC"
    INTEL = "INTEL"
    UNKNOWN = "UNKNOWN"


class ThreatActor(RecordModel):
    """STIX ``threat-actor``."""

    stix_id: Annotated[str, _stix_id("threat-actor")]
    name: ShortText
    aliases: list[ShortText] = Field(default_factory=list, max_length=32)
    description: Text | None = None


class Indicator(RecordModel):
    """STIX ``indicator``."""

    stix_id: Annotated[str, _stix_id("indicator")]
    name: ShortText | None = None
    pattern: Text
    pattern_type: Label = "stix"
    valid_from: UtcDatetime
    indicator_types: list[Label] = Field(default_factory=list, max_length=16)


class Relationship(RecordModel):
    """STIX ``relationship``."""

    stix_id: Annotated[str, _stix_id("relationship")]
    relationship_type: Label
    source_ref: StixId
    target_ref: StixId


class Sighting(RecordModel):
    """STIX ``sighting``."""

    stix_id: Annotated[str, _stix_id("sighting")]
    sighting_of_ref: StixId
    first_seen: UtcDatetime | None = None
    last_seen: UtcDatetime | None = None
    count: int | None = Field(default=None, ge=0, le=999_999_999)
    where_sighted_refs: list[StixId] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.first_seen and self.last_seen and self.last_seen < self.first_seen:
            raise ValueError("lastSeen must not be before firstSeen")
        return self


class RecordRef(RecordModel):
    """An exchange record a report was derived from."""

    record_id: UuidStr
    record_family: RecordFamily


class IntelligenceReport(ExchangeRecord):
    """An intelligence report: STIX 2.1 ``report`` fields plus Admiralty grading.

    Raises:
        pydantic.ValidationError: an identifier is not a STIX id of the right type, or a
            grading is out of range.
    """

    record_type_name: ClassVar[str] = "intel"
    schema_name: ClassVar[str] = "exchange.records.IntelligenceReport"

    stix_id: Annotated[str, _stix_id("report")]
    name: ShortText
    description: LongText | None = None
    report_types: list[Label] = Field(default_factory=list, max_length=16)
    published: UtcDatetime
    created_by_ref: Annotated[str, _stix_id("identity")]
    confidence: int = Field(ge=0, le=100)
    source_reliability: SourceReliability
    information_credibility: int = Field(ge=1, le=6)
    threat_actors: list[ThreatActor] = Field(default_factory=list, max_length=100)
    indicators: list[Indicator] = Field(default_factory=list, max_length=1000)
    relationships: list[Relationship] = Field(default_factory=list, max_length=1000)
    sightings: list[Sighting] = Field(default_factory=list, max_length=1000)
    record_refs: list[RecordRef] = Field(default_factory=list, max_length=1000)
    stix_bundle: LongText | None = None
