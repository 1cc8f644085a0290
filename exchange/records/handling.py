"""Data-handling markings: TLP 2.0, releasability, caveats, national markings, retention.

These are the fields policy code enforces, so the model rejects any combination that is
contradictory or would release more than the originator can: an unknown TLP or caveat is an
error here, and on the Avro path unknown symbols resolve to the most restrictive value.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, model_validator

from exchange.records._model import RecordModel
from exchange.records._types import (
    AgencyId,
    CountryCode,
    Label,
    ShortText,
    agency_country,
)

__all__ = [
    "AgencyRef",
    "Caveat",
    "Handling",
    "NationalMarking",
    "PermittedUse",
    "Retention",
    "RetentionDisposition",
    "Tlp",
]


class Tlp(StrEnum):
    """Traffic Light Protocol 2.0. Values are the Avro symbols; :attr:`label` is the marking."""

    CLEAR = "CLEAR"
    GREEN = "GREEN"
    AMBER = "AMBER"
    AMBER_STRICT = "AMBER_STRICT"
    RED = "RED"

    @property
    def label(self) -> str:
        """The TLP 2.0 label, verbatim and never translated, e.g. ``TLP:AMBER+STRICT``."""
        # Avro symbols cannot contain '+' (DOMAIN.md, Avro conventions).
        return "TLP:" + self.value.replace("_", "+")

    @property
    def rank(self) -> int:
        """Restrictiveness, 0 (CLEAR) to 4 (RED): derived records may only keep or raise it."""
        return _TLP_ORDER.index(self)


_TLP_ORDER = (Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED)


class Caveat(StrEnum):
    """Closed set of dissemination caveats; ``UNKNOWN`` is the most restrictive."""

    LAW_ENFORCEMENT_SENSITIVE = "LAW_ENFORCEMENT_SENSITIVE"
    PERSONAL_DATA = "PERSONAL_DATA"
    ORIGINATOR_CONTROLLED = "ORIGINATOR_CONTROLLED"
    NO_THIRD_PARTY_DISSEMINATION = "NO_THIRD_PARTY_DISSEMINATION"
    NOT_FOR_EVIDENTIARY_USE = "NOT_FOR_EVIDENTIARY_USE"
    TRACE_DATA_RESTRICTED = "TRACE_DATA_RESTRICTED"
    INVESTIGATIVE_LEAD_ONLY = "INVESTIGATIVE_LEAD_ONLY"
    MX_RESERVADA = "MX_RESERVADA"
    MX_CONFIDENCIAL = "MX_CONFIDENCIAL"
    US_CUI = "US_CUI"
    UNKNOWN = "UNKNOWN"


# Caveats that restrict dissemination and therefore contradict TLP:CLEAR (public release).
_RESTRICTIVE_CAVEATS = frozenset(Caveat) - {
    Caveat.NOT_FOR_EVIDENTIARY_USE,
    Caveat.INVESTIGATIVE_LEAD_ONLY,
}
# Personal and trace data may not be shared community-wide (TLP:GREEN) or publicly.
_NEEDS_AMBER = frozenset({Caveat.PERSONAL_DATA, Caveat.TRACE_DATA_RESTRICTED})


class PermittedUse(StrEnum):
    """Purposes the originator permits. ``UNSPECIFIED`` permits nothing."""

    CRIMINAL_INVESTIGATION = "CRIMINAL_INVESTIGATION"
    PROSECUTION = "PROSECUTION"
    INTELLIGENCE_ANALYSIS = "INTELLIGENCE_ANALYSIS"
    STATISTICAL_REPORTING = "STATISTICAL_REPORTING"
    UNSPECIFIED = "UNSPECIFIED"


class RetentionDisposition(StrEnum):
    """What happens when retention ends; ``REVIEW`` means a human decides."""

    DESTROY = "DESTROY"
    REVIEW = "REVIEW"
    ARCHIVE = "ARCHIVE"
    RETURN_TO_ORIGINATOR = "RETURN_TO_ORIGINATOR"


class AgencyRef(RecordModel):
    """An agency, identified by ``<ISO alpha-3>-<AGENCY>`` (``MEX-FGR``, ``USA-ATF``).

    Raises:
        pydantic.ValidationError: the id is malformed or its prefix is not ``country``.
    """

    agency_id: AgencyId
    country: CountryCode
    name: ShortText | None = None
    ncic_ori: Annotated[str, Field(pattern=r"^[A-Z0-9]{9}$")] | None = None
    unit: ShortText | None = None

    @model_validator(mode="after")
    def _country_matches_id(self) -> Self:
        if agency_country(self.agency_id) != self.country:
            raise ValueError(
                f"agencyId {self.agency_id!r} does not belong to country {self.country!r}"
            )
        return self


class NationalMarking(RecordModel):
    """A national classification marking, kept verbatim with its authority."""

    country: CountryCode
    marking: ShortText
    authority: ShortText
    legal_basis: ShortText | None = None


class Retention(RecordModel):
    """How long a record may be kept, and what happens then."""

    policy: Label
    retain_until: date | None = None
    review_after: date | None = None
    disposition: RetentionDisposition
    legal_hold: bool = False

    @model_validator(mode="after")
    def _review_before_expiry(self) -> Self:
        if self.retain_until and self.review_after and self.review_after > self.retain_until:
            raise ValueError("reviewAfter must not be later than retainUntil")
        return self


class Handling(RecordModel):
    """The handling block every record carries.

    Raises:
        pydantic.ValidationError: ``releasableTo`` omits the originator's country or repeats a
            code; ``releasableToAgencies`` names an agency outside ``releasableTo`` or is empty;
            a caveat repeats, contradicts TLP:CLEAR, or needs TLP:AMBER or stricter;
            TLP:RED or the UNKNOWN caveat comes without named recipients.
    """

    tlp: Tlp = Tlp.RED
    releasable_to: list[CountryCode] = Field(min_length=1, max_length=16)
    releasable_to_agencies: list[AgencyId] | None = Field(default=None, min_length=1, max_length=64)
    originator: AgencyRef
    caveats: list[Caveat] = Field(default_factory=list, max_length=len(Caveat))
    national_markings: list[NationalMarking] = Field(default_factory=list, max_length=8)
    permitted_uses: list[PermittedUse] = Field(default_factory=list, max_length=len(PermittedUse))
    retention: Retention

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for name, values in (
            ("releasableTo", self.releasable_to),
            ("releasableToAgencies", self.releasable_to_agencies or []),
            ("caveats", self.caveats),
            ("permittedUses", self.permitted_uses),
        ):
            if len(set(values)) != len(values):
                raise ValueError(f"{name} repeats a value")
        if self.originator.country not in self.releasable_to:
            raise ValueError(
                f"releasableTo must include the originator's country {self.originator.country!r}"
            )
        for agency in self.releasable_to_agencies or []:
            if agency_country(agency) not in self.releasable_to:
                raise ValueError(f"releasableToAgencies names {agency!r} outside releasableTo")
        if self.tlp is Tlp.CLEAR:
            restrictive = sorted(set(self.caveats) & _RESTRICTIVE_CAVEATS)
            if restrictive or self.releasable_to_agencies is not None:
                raise ValueError("TLP:CLEAR cannot carry restrictive caveats or agency narrowing")
        if (self.tlp is Tlp.RED or Caveat.UNKNOWN in self.caveats) and (
            self.releasable_to_agencies is None
        ):
            # TLP:RED is for named individual recipients; UNKNOWN is the most restrictive.
            raise ValueError(
                "TLP:RED and the UNKNOWN caveat require named recipients (releasableToAgencies)"
            )
        needs_amber = sorted(set(self.caveats) & _NEEDS_AMBER)
        if needs_amber and self.tlp.rank < Tlp.AMBER.rank:
            raise ValueError(f"caveat {needs_amber[0]} requires TLP:AMBER or stricter")
        return self

    def is_releasable_to(self, agency_id: str) -> bool:
        """Whether this handling releases the record to ``agency_id``.

        Args:
            agency_id: a recipient agency id such as ``"USA-ATF"``.

        Returns:
            True when the agency's country is in ``releasableTo`` and, if the record is
            narrowed to agencies, the agency is named in ``releasableToAgencies``.
        """
        if agency_country(agency_id) not in self.releasable_to:
            return False
        return self.releasable_to_agencies is None or agency_id in self.releasable_to_agencies
