"""``TraceRequest`` and ``TraceResponse``: the ATF eTrace flow (Form 3312.1)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import ClassVar, Self

from pydantic import Field, model_validator

from exchange.records._model import RecordModel
from exchange.records._types import Label, ShortText, Text, UuidStr
from exchange.records.common import ExchangeRecord, Firearm, PersonRef, Place
from exchange.records.handling import AgencyRef, Caveat, Tlp

__all__ = [
    "LicenseeRef",
    "LicenseeRole",
    "TracePriority",
    "TraceRequest",
    "TraceResponse",
    "TraceStatus",
]


class TracePriority(StrEnum):
    """Trace priority; ``URGENT`` needs a justification."""

    ROUTINE = "ROUTINE"
    URGENT = "URGENT"


class TraceRequest(ExchangeRecord):
    """A firearm trace request (ATF Form 3312.1 / eTrace, Spanish form 3312.1(S)).

    Raises:
        pydantic.ValidationError: the requesting agency has no NCIC ORI; an urgent request
            has no justification; recovery is after the request; persons are named without
            the ``PERSONAL_DATA`` caveat.
    """

    record_type_name: ClassVar[str] = "trace-request"
    schema_name: ClassVar[str] = "exchange.records.TraceRequest"

    request_date: date
    priority: TracePriority
    urgency_justification: Text | None = None
    special_instructions: Text | None = None
    crime_code: Label
    project_code: Label | None = None
    requesting_agency: AgencyRef
    agency_case_number: Label
    requesting_officer: ShortText | None = None
    firearm: Firearm
    recovery_date: date
    recovery_location: Place
    possessor: PersonRef | None = None
    associates: list[PersonRef] = Field(default_factory=list, max_length=32)
    seizure_record_id: UuidStr | None = None

    @model_validator(mode="after")
    def _form_rules(self) -> Self:
        if self.requesting_agency.ncic_ori is None:
            raise ValueError("requestingAgency.ncicOri is required on a trace request")
        if self.priority is TracePriority.URGENT and self.urgency_justification is None:
            raise ValueError("an URGENT trace request needs an urgencyJustification")
        if self.recovery_date > self.request_date:
            raise ValueError("recoveryDate must not be after requestDate")
        if self.possessor is not None or self.associates:
            self._require_caveat(Caveat.PERSONAL_DATA, "persons are named")
        return self


class TraceStatus(StrEnum):
    """Trace outcome."""

    COMPLETED = "COMPLETED"
    INCOMPLETE = "INCOMPLETE"
    PENDING = "PENDING"
    NOT_TRACEABLE = "NOT_TRACEABLE"
    REJECTED = "REJECTED"


class LicenseeRole(StrEnum):
    """Role of a licensee in a distribution chain."""

    MANUFACTURER = "MANUFACTURER"
    IMPORTER = "IMPORTER"
    DISTRIBUTOR = "DISTRIBUTOR"
    WHOLESALER = "WHOLESALER"
    RETAILER = "RETAILER"
    PAWNBROKER = "PAWNBROKER"
    OTHER = "OTHER"


class LicenseeRef(RecordModel):
    """A federal firearms licensee (FFL) in a distribution chain."""

    license_number: Label
    name: ShortText
    role: LicenseeRole
    location: Place | None = None


class TraceResponse(ExchangeRecord):
    """The result of a trace. Trace data goes only to law enforcement for a criminal case.

    Raises:
        pydantic.ValidationError: the ``TRACE_DATA_RESTRICTED`` caveat is missing; a
            purchaser is named without ``PERSONAL_DATA``; a completed trace lacks its sale
            date; time-to-crime is negative.
    """

    record_type_name: ClassVar[str] = "trace-response"
    schema_name: ClassVar[str] = "exchange.records.TraceResponse"

    request_record_id: UuidStr
    trace_number: Label
    status: TraceStatus
    status_reason: Text | None = None
    manufacturer_or_importer: ShortText | None = None
    distribution_chain: list[LicenseeRef] = Field(default_factory=list, max_length=32)
    retail_licensee: LicenseeRef | None = None
    first_retail_sale_date: date | None = None
    purchaser: PersonRef | None = None
    time_to_crime_days: int | None = Field(default=None, ge=0, le=50_000)
    multiple_sale: bool = False
    related_trace_numbers: list[Label] = Field(default_factory=list, max_length=256)

    @model_validator(mode="after")
    def _trace_rules(self) -> Self:
        # DOMAIN.md: trace data may go only to law enforcement for a criminal investigation.
        self._require_caveat(Caveat.TRACE_DATA_RESTRICTED, "this is trace data")
        if self.handling.tlp.rank < Tlp.AMBER.rank:
            raise ValueError("trace data requires TLP:AMBER or stricter")
        if self.purchaser is not None:
            self._require_caveat(Caveat.PERSONAL_DATA, "a purchaser is named")
        if self.status is TraceStatus.COMPLETED and self.first_retail_sale_date is None:
            raise ValueError("a COMPLETED trace needs firstRetailSaleDate")
        return self
