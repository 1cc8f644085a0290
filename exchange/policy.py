"""Handling rules: who may receive a record, decided from its handling markings alone.

The crypto layer seals bytes plus a :class:`HandlingSummary`; this module decides which
agencies a producer may address and whether a consumer may read. It knows nothing of Kafka or
of the record models (``summary_from_handling`` duck-types a record's ``handling``).

Rules (docs/envelope.md, "Handling rules"; DOMAIN.md "Handling"):

1. Every recipient's country is in ``releasable_to``.
2. If ``releasable_to_agencies`` is set, every recipient is named in it.
3. ``TLP:RED`` requires ``releasable_to_agencies``: red goes to named recipients only.
4. ``ORIGINATOR_CONTROLLED``, ``NO_THIRD_PARTY_DISSEMINATION`` and ``UNKNOWN`` (the most
   restrictive caveat) let only the originator address the record; a re-publisher may not.
5. ``UNKNOWN`` also requires named recipients, like ``TLP:RED``.
6. A consumer may read only if rules 1-3 release the record to its own agency.
7. A derived record keeps or tightens its parent's handling (:func:`check_derivation`).

Example::

    >>> h = HandlingSummary(tlp="AMBER", releasable_to=("MEX", "USA"), originator="MEX-FGR")
    >>> sorted(allowed_recipients(h, {"USA-ATF", "CAN-RCMP"}, sender="MEX-FGR"))
    ['USA-ATF']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from exchange.errors import PolicyError
from exchange.identifiers import is_agency_id

__all__ = [
    "CAVEATS",
    "TLP_LEVELS",
    "HandlingSummary",
    "allowed_recipients",
    "check_addressing",
    "check_derivation",
    "check_release",
    "summary_from_handling",
]

#: TLP 2.0 levels by increasing restriction (Avro enum symbols; AMBER_STRICT = TLP:AMBER+STRICT).
TLP_LEVELS: tuple[str, ...] = ("CLEAR", "GREEN", "AMBER", "AMBER_STRICT", "RED")
CAVEATS: frozenset[str] = frozenset(
    {
        "LAW_ENFORCEMENT_SENSITIVE",
        "PERSONAL_DATA",
        "ORIGINATOR_CONTROLLED",
        "NO_THIRD_PARTY_DISSEMINATION",
        "NOT_FOR_EVIDENTIARY_USE",
        "TRACE_DATA_RESTRICTED",
        "INVESTIGATIVE_LEAD_ONLY",
        "MX_RESERVADA",
        "MX_CONFIDENCIAL",
        "US_CUI",
        "UNKNOWN",
    }
)
_ORIGINATOR_ONLY = frozenset({"ORIGINATOR_CONTROLLED", "NO_THIRD_PARTY_DISSEMINATION", "UNKNOWN"})
_COUNTRY = re.compile(r"^[A-Z]{3}$")


def _country(agency_id: str) -> str:
    return agency_id.split("-", 1)[0]


@dataclass(frozen=True)
class HandlingSummary:
    """The handling markings that travel, signed, in every envelope header.

    Attributes:
        tlp: one of :data:`TLP_LEVELS` (Avro symbol, e.g. ``AMBER_STRICT``).
        releasable_to: ISO 3166-1 alpha-3 codes, sorted, unique; includes the originator's.
        originator: agency id of the originating agency.
        releasable_to_agencies: if not ``None``, the only agencies that may receive it.
        caveats: closed-enum caveats, sorted, unique.

    Raises:
        ValueError: a field is outside its syntax (programmer or record error).
    """

    tlp: str
    releasable_to: tuple[str, ...]
    originator: str
    releasable_to_agencies: tuple[str, ...] | None = None
    caveats: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.tlp not in TLP_LEVELS:
            raise ValueError(f"got tlp {self.tlp!r}, expected one of {TLP_LEVELS}")
        if not is_agency_id(self.originator):
            raise ValueError(f"got originator {self.originator!r}, expected CCC-AGENCY")
        if any(not _COUNTRY.match(c) for c in self.releasable_to):
            raise ValueError("releasable_to must hold ISO 3166-1 alpha-3 codes")
        if _country(self.originator) not in self.releasable_to:
            raise ValueError("releasable_to must include the originator's country")
        if any(not is_agency_id(a) for a in self.releasable_to_agencies or ()):
            raise ValueError("releasable_to_agencies must hold agency ids")
        if not set(self.caveats) <= CAVEATS:
            raise ValueError(f"got caveats {self.caveats!r}, expected members of {sorted(CAVEATS)}")
        # canonical form: sorted and unique, so the signed header has one encoding
        for name in ("releasable_to", "caveats"):
            value = getattr(self, name)
            if list(value) != sorted(set(value)):
                object.__setattr__(self, name, tuple(sorted(set(value))))
        if self.releasable_to_agencies is not None:
            agencies = tuple(sorted(set(self.releasable_to_agencies)))
            object.__setattr__(self, "releasable_to_agencies", agencies)

    @property
    def tlp_label(self) -> str:
        """The verbatim TLP 2.0 label, e.g. ``TLP:AMBER+STRICT``."""
        return "TLP:" + self.tlp.replace("_STRICT", "+STRICT")

    def needs_named_recipients(self) -> bool:
        return self.tlp == "RED" or "UNKNOWN" in self.caveats


def _release_problem(h: HandlingSummary, agency_id: str) -> str | None:
    if _country(agency_id) not in h.releasable_to:
        return f"{agency_id} is outside releasable-to {','.join(h.releasable_to)}"
    if h.needs_named_recipients() and h.releasable_to_agencies is None:
        return f"{h.tlp_label} needs named recipients (releasableToAgencies)"
    if h.releasable_to_agencies is not None and agency_id not in h.releasable_to_agencies:
        return f"{agency_id} is not among the named recipients"
    return None


def check_release(handling: HandlingSummary, agency_id: str) -> None:
    """Consumer side: may ``agency_id`` read a record with this handling? (rule 6)

    Raises:
        PolicyError: the handling does not release the record to ``agency_id``.
    """
    problem = _release_problem(handling, agency_id)
    if problem is not None:
        raise PolicyError(f"not releasable: {problem}")


def check_addressing(handling: HandlingSummary, *, sender: str, recipients: Iterable[str]) -> None:
    """Producer side: may ``sender`` address ``recipients`` under ``handling``? (rules 1-5)

    Raises:
        PolicyError: no recipients, or one recipient or the sender breaks a rule.
    """
    recipients = list(recipients)
    if not recipients:
        raise PolicyError("no recipients: the handling releases the record to nobody addressed")
    if sender != handling.originator and _ORIGINATOR_ONLY & set(handling.caveats):
        raise PolicyError(
            f"only the originator {handling.originator} may address a record with caveats "
            f"{','.join(sorted(_ORIGINATOR_ONLY & set(handling.caveats)))}"
        )
    for agency in recipients:
        problem = _release_problem(handling, agency)
        if problem is not None:
            raise PolicyError(f"cannot address {agency}: {problem}")


def allowed_recipients(
    handling: HandlingSummary, candidates: Iterable[str], *, sender: str
) -> frozenset[str]:
    """The candidates (e.g. every enrolled agency) that ``sender`` may address, minus itself."""
    if sender != handling.originator and _ORIGINATOR_ONLY & set(handling.caveats):
        return frozenset()
    return frozenset(a for a in candidates if a != sender and _release_problem(handling, a) is None)


def check_derivation(parent: HandlingSummary, child: HandlingSummary) -> None:
    """A derived record keeps or tightens its parent's restrictions (rule 7).

    Raises:
        PolicyError: the child loosens TLP, releasability, named recipients or caveats.
    """
    if TLP_LEVELS.index(child.tlp) < TLP_LEVELS.index(parent.tlp):
        raise PolicyError(f"derived record loosens {parent.tlp_label} to {child.tlp_label}")
    if not set(child.releasable_to) <= set(parent.releasable_to):
        raise PolicyError("derived record widens releasable-to")
    if parent.releasable_to_agencies is not None and (
        child.releasable_to_agencies is None
        or not set(child.releasable_to_agencies) <= set(parent.releasable_to_agencies)
    ):
        raise PolicyError("derived record widens the named recipients")
    if not set(parent.caveats) <= set(child.caveats):
        raise PolicyError("derived record drops caveats")


def summary_from_handling(handling: Any) -> HandlingSummary:
    """Build a summary from a record's ``handling`` (exchange.records models, duck-typed).

    Raises:
        ValueError: the handling does not carry valid markings.
    """
    tlp = handling.tlp
    tlp_name = str(getattr(tlp, "name", tlp)).removeprefix("TLP_")
    agencies = handling.releasable_to_agencies
    return HandlingSummary(
        tlp=tlp_name,
        releasable_to=tuple(str(c) for c in handling.releasable_to),
        originator=str(handling.originator.agency_id),
        releasable_to_agencies=None if agencies is None else tuple(str(a) for a in agencies),
        caveats=tuple(str(getattr(c, "value", c)) for c in handling.caveats),
    )
