"""Shared record types (Avro namespace ``exchange.common``) and the :class:`ExchangeRecord` base."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Self

from pydantic import Field, model_validator

from exchange.records._model import RecordModel
from exchange.records._types import (
    AgencyId,
    CountryCode,
    Label,
    Sha256Digest,
    ShortText,
    UtcDatetime,
    UuidStr,
)
from exchange.records.handling import AgencyRef, Caveat, Handling

__all__ = [
    "CaseRef",
    "EvidenceItemRef",
    "ExchangeRecord",
    "Firearm",
    "FirearmType",
    "PersonRef",
    "PersonRole",
    "Place",
    "RecordMeta",
    "SerialStatus",
]

# BCP 47 restricted to language[-REGION]: es, es-MX, en-US. Rust-regex syntax (pydantic-core),
# where "$" is the end of the text and never matches before a trailing newline.
_LANG = r"^[a-z]{2,3}(?:-[A-Z]{2})?$"


class CaseRef(RecordModel):
    """A case number in one agency's case system."""

    agency_id: AgencyId
    case_number: Label


class RecordMeta(RecordModel):
    """Identity and provenance of a record.

    Raises:
        pydantic.ValidationError: a record supersedes itself, or a version > 1 names no
            predecessor.
    """

    record_id: UuidStr
    record_version: int = Field(default=1, ge=1, le=1_000_000)
    supersedes: UuidStr | None = None
    created_at: UtcDatetime
    source_system: ShortText
    source_record_id: ShortText | None = None
    case_refs: list[CaseRef] = Field(default_factory=list, max_length=32)
    lang: Annotated[str, Field(pattern=_LANG)]

    @model_validator(mode="after")
    def _lineage(self) -> Self:
        if self.supersedes == self.record_id:
            raise ValueError("supersedes must name a different record")
        if self.record_version > 1 and self.supersedes is None:
            raise ValueError("a recordVersion above 1 must name the record it supersedes")
        return self


class Place(RecordModel):
    """A place; coordinates are WGS 84 decimal degrees, both or neither."""

    country: CountryCode
    admin_area: ShortText | None = None
    municipality: ShortText | None = None
    locality: ShortText | None = None
    latitude: float | None = Field(default=None, ge=-90.0, le=90.0)
    longitude: float | None = Field(default=None, ge=-180.0, le=180.0)
    port_of_entry: ShortText | None = None

    @model_validator(mode="after")
    def _both_coordinates(self) -> Self:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude must be given together")
        return self


class SerialStatus(StrEnum):
    """State of a firearm's serial number."""

    INTACT = "INTACT"
    OBLITERATED = "OBLITERATED"
    RESTORED = "RESTORED"
    NONE = "NONE"
    UNKNOWN = "UNKNOWN"


class FirearmType(StrEnum):
    """Firearm types of ATF Form 3312.1."""

    PISTOL = "PISTOL"
    REVOLVER = "REVOLVER"
    RIFLE = "RIFLE"
    SHOTGUN = "SHOTGUN"
    MACHINE_GUN = "MACHINE_GUN"
    SUBMACHINE_GUN = "SUBMACHINE_GUN"
    DERRINGER = "DERRINGER"
    RECEIVER_FRAME = "RECEIVER_FRAME"
    GRENADE_LAUNCHER = "GRENADE_LAUNCHER"
    OTHER = "OTHER"


class Firearm(RecordModel):
    """A firearm as described in ATF Form 3312.1 Part V.

    Raises:
        pydantic.ValidationError: a foreign-made firearm names no importer, or a serial
            number contradicts ``serialStatus``.
    """

    firearm_uid: UuidStr
    serial_number: Label | None = None
    serial_status: SerialStatus
    manufacturer: ShortText
    manufacturer_code: Label | None = None
    model: ShortText | None = None
    caliber: Label
    firearm_type: FirearmType
    country_of_origin: CountryCode | None = None
    importer: ShortText | None = None
    additional_markings: list[ShortText] = Field(default_factory=list, max_length=16)
    privately_made: bool = False
    converted_to_automatic: bool = False
    reference_table_id: Label | None = None

    @model_validator(mode="after")
    def _importer_and_serial(self) -> Self:
        # US law requires importers to mark foreign firearms; a trace starts from that mark.
        if self.country_of_origin not in (None, "USA") and self.importer is None:
            raise ValueError("importer is required when countryOfOrigin is not USA")
        if self.serial_status is SerialStatus.NONE and self.serial_number is not None:
            raise ValueError("serialStatus NONE contradicts a serialNumber")
        return self


class PersonRole(StrEnum):
    """Why a person appears in a record."""

    POSSESSOR = "POSSESSOR"
    ASSOCIATE = "ASSOCIATE"
    PURCHASER = "PURCHASER"
    SUSPECT = "SUSPECT"
    WITNESS = "WITNESS"
    OTHER = "OTHER"


class PersonRef(RecordModel):
    """A person, minimal by design: no physical descriptors are first-class fields."""

    person_uid: UuidStr
    role: PersonRole
    full_name: ShortText | None = None
    birth_year: int | None = Field(default=None, ge=1900, le=2100)
    nationality: CountryCode | None = None


class EvidenceItemRef(RecordModel):
    """An exhibit under chain of custody, with digests of its documentation."""

    exhibit_id: Label
    seal_number: Label | None = None
    custodian: AgencyRef
    custody_log_ref: ShortText | None = None
    digests: list[Sha256Digest] = Field(default_factory=list, max_length=16)


class ExchangeRecord(RecordModel):
    """Base of the five record families: every record has :attr:`meta` and :attr:`handling`.

    Subclasses set :attr:`record_type_name` (the CLI name, e.g. ``"seizure"``) and
    :attr:`schema_name` (the Avro full name). Use :func:`exchange.records.record_type` to
    encode, decode and convert records.
    """

    record_type_name: ClassVar[str]
    schema_name: ClassVar[str]

    meta: RecordMeta
    handling: Handling

    def _require_caveat(self, caveat: Caveat, because: str) -> None:
        # Shared by the family validators: content that needs a marking must carry it.
        if caveat not in self.handling.caveats:
            raise ValueError(f"{because}, so handling.caveats must include {caveat.value}")
