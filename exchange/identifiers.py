"""The syntax of agency ids, shared by records, routing, policy and the PKI.

``<ISO 3166-1 alpha-3>-<AGENCY>[-<SUB>[-<SUB>]]``: ``MEX-FGR``, ``USA-ATF``,
``MEX-FGJ-CHIH`` (a state prosecutor's office). Upper case only, so one agency has exactly
one spelling and ids compare byte for byte in policy code; the characters are safe as topic
names and path components.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "AGENCY_ID_PATTERN",
    "AGENCY_ID_RE",
    "CANONICAL_UUID_RE",
    "agency_country",
    "is_agency_id",
]

#: The agency id syntax as a regex fragment (no anchors), for composing larger patterns.
AGENCY_ID_PATTERN: Final = r"[A-Z]{3}-[A-Z][A-Z0-9]{1,15}(?:-[A-Z0-9]{1,15}){0,2}"
#: A whole agency id.
AGENCY_ID_RE: Final = re.compile(rf"\A{AGENCY_ID_PATTERN}\Z")


#: The one spelling of a UUID the exchange accepts in records and headers: what
#: ``str(uuid.UUID(...))`` writes (lower-case 8-4-4-4-12 hex), so ids compare as strings.
CANONICAL_UUID_RE: Final = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


def is_agency_id(value: str) -> bool:
    """Whether ``value`` has the agency id syntax (the country code is not checked)."""
    return AGENCY_ID_RE.match(value) is not None


def agency_country(agency_id: str) -> str:
    """The ISO alpha-3 country prefix of an agency id, e.g. ``MEX`` for ``MEX-FGR``."""
    return agency_id.split("-", 1)[0]
