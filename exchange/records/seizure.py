"""``SeizureRecord``: a seizure of firearms, ammunition or accessories."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Self

from pydantic import Field, model_validator

from exchange.records._model import RecordModel
from exchange.records._types import Label, LongText, ShortText, UtcDatetime, UuidStr
from exchange.records.common import (
    EvidenceItemRef,
    ExchangeRecord,
    Firearm,
    PersonRef,
    Place,
)
from exchange.records.handling import AgencyRef, Caveat

__all__ = [
    "Accessory",
    "AccessoryKind",
    "AmmunitionLot",
    "Conveyance",
    "ConveyanceKind",
    "SeizureContext",
    "SeizureRecord",
]

_MAX_COUNT = 2**31 - 1  # Avro int


class SeizureContext(StrEnum):
    """Where and how the seizure happened."""

    PORT_OF_ENTRY_OUTBOUND = "PORT_OF_ENTRY_OUTBOUND"
    PORT_OF_ENTRY_INBOUND = "PORT_OF_ENTRY_INBOUND"
    CHECKPOINT = "CHECKPOINT"
    CRIME_SCENE = "CRIME_SCENE"
    SEARCH_WARRANT = "SEARCH_WARRANT"
    TRAFFIC_STOP = "TRAFFIC_STOP"
    CONTROLLED_DELIVERY = "CONTROLLED_DELIVERY"
    MAIL_PARCEL = "MAIL_PARCEL"
    ABANDONED = "ABANDONED"
    OTHER = "OTHER"


class AmmunitionLot(RecordModel):
    """Rounds of one calibre (and headstamp, when known)."""

    caliber: Label
    quantity: int = Field(ge=1, le=_MAX_COUNT)
    headstamp: ShortText | None = None


class AccessoryKind(StrEnum):
    """Kinds of accessory."""

    MAGAZINE = "MAGAZINE"
    DRUM_MAGAZINE = "DRUM_MAGAZINE"
    SUPPRESSOR = "SUPPRESSOR"
    OPTIC = "OPTIC"
    CONVERSION_DEVICE = "CONVERSION_DEVICE"
    BODY_ARMOR = "BODY_ARMOR"
    PARTS_KIT = "PARTS_KIT"
    OTHER = "OTHER"


class Accessory(RecordModel):
    """Magazines, conversion devices and similar items."""

    kind: AccessoryKind
    quantity: int = Field(ge=1, le=_MAX_COUNT)
    description: ShortText | None = None


class ConveyanceKind(StrEnum):
    """How seized items were moving."""

    PRIVATE_VEHICLE = "PRIVATE_VEHICLE"
    COMMERCIAL_CARGO = "COMMERCIAL_CARGO"
    BUS = "BUS"
    PEDESTRIAN = "PEDESTRIAN"
    RAIL = "RAIL"
    AIRCRAFT = "AIRCRAFT"
    VESSEL = "VESSEL"
    PARCEL = "PARCEL"
    OTHER = "OTHER"


class Conveyance(RecordModel):
    """The conveyance of a seizure (schema v2)."""

    kind: ConveyanceKind
    description: ShortText | None = None


class SeizureRecord(ExchangeRecord):
    """A seizure of firearms, ammunition or accessories (schema v2; v1 lacks ``conveyance``).

    Raises:
        pydantic.ValidationError: nothing was seized, or persons are named without the
            ``PERSONAL_DATA`` caveat.
    """

    record_type_name: ClassVar[str] = "seizure"
    schema_name: ClassVar[str] = "exchange.records.SeizureRecord"

    seizure_id: Label
    seized_at: UtcDatetime
    location: Place
    seizing_agency: AgencyRef
    context: SeizureContext
    operation_ref: Label | None = None
    offense_codes: list[Label] = Field(default_factory=list, max_length=32)
    firearms: list[Firearm] = Field(default_factory=list, max_length=2000)
    ammunition: list[AmmunitionLot] = Field(default_factory=list, max_length=200)
    accessories: list[Accessory] = Field(default_factory=list, max_length=200)
    persons: list[PersonRef] = Field(default_factory=list, max_length=100)
    evidence: list[EvidenceItemRef] = Field(default_factory=list, max_length=2000)
    trace_request_ids: list[UuidStr] = Field(default_factory=list, max_length=2000)
    narrative: LongText | None = None
    conveyance: Conveyance | None = None

    @model_validator(mode="after")
    def _contents(self) -> Self:
        if not (self.firearms or self.ammunition or self.accessories):
            raise ValueError("a seizure needs at least one firearm, ammunition lot or accessory")
        if self.persons:
            self._require_caveat(Caveat.PERSONAL_DATA, "persons are named")
        return self
