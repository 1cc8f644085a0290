"""Constrained field types shared by the record models.

Records arrive from untrusted peers, so every string and list is bounded and every
identifier has a strict syntax. Each Avro logical type (``uuid``, ``fixed(32)`` digests)
has one annotated Python type here carrying a :class:`AvroLogical` marker, so the
model <-> schema agreement test can see which Python field stands for which Avro type.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, PlainSerializer
from pydantic import StringConstraints as _Str

from exchange.identifiers import CANONICAL_UUID_RE, agency_country, is_agency_id

__all__ = [
    "ISO_ALPHA3",
    "AgencyId",
    "AvroLogical",
    "CountryCode",
    "Label",
    "LongText",
    "Sha256Digest",
    "ShortText",
    "Text",
    "UtcDatetime",
    "UuidStr",
    "agency_country",
]


@dataclass(frozen=True)
class AvroLogical:
    """Marks an annotated type as the Python side of an Avro logical or named type."""

    name: str


# ISO 3166-1 alpha-3, all 249 officially assigned codes (Debian iso-codes 3166-1).
ISO_ALPHA3: frozenset[str] = frozenset(
    """
    ABW AFG AGO AIA ALA ALB AND ARE ARG ARM ASM ATA ATF ATG AUS AUT AZE BDI BEL BEN BES BFA BGD
    BGR BHR BHS BIH BLM BLR BLZ BMU BOL BRA BRB BRN BTN BVT BWA CAF CAN CCK CHE CHL CHN CIV CMR
    COD COG COK COL COM CPV CRI CUB CUW CXR CYM CYP CZE DEU DJI DMA DNK DOM DZA ECU EGY ERI ESH
    ESP EST ETH FIN FJI FLK FRA FRO FSM GAB GBR GEO GGY GHA GIB GIN GLP GMB GNB GNQ GRC GRD GRL
    GTM GUF GUM GUY HKG HMD HND HRV HTI HUN IDN IMN IND IOT IRL IRN IRQ ISL ISR ITA JAM JEY JOR
    JPN KAZ KEN KGZ KHM KIR KNA KOR KWT LAO LBN LBR LBY LCA LIE LKA LSO LTU LUX LVA MAC MAF MAR
    MCO MDA MDG MDV MEX MHL MKD MLI MLT MMR MNE MNG MNP MOZ MRT MSR MTQ MUS MWI MYS MYT NAM NCL
    NER NFK NGA NIC NIU NLD NOR NPL NRU NZL OMN PAK PAN PCN PER PHL PLW PNG POL PRI PRK PRT PRY
    PSE PYF QAT REU ROU RUS RWA SAU SDN SEN SGP SGS SHN SJM SLB SLE SLV SMR SOM SPM SRB SSD STP
    SUR SVK SVN SWE SWZ SXM SYC SYR TCA TCD TGO THA TJK TKL TKM TLS TON TTO TUN TUR TUV TWN TZA
    UGA UKR UMI URY USA UZB VAT VCT VEN VGB VIR VNM VUT WLF WSM YEM ZAF ZMB ZWE
    """.split()  # noqa: SIM905 - a 249-item list literal would hide the table's shape
)


def _check_country(value: str) -> str:
    if value not in ISO_ALPHA3:
        raise ValueError(f"got {value!r}, expected an ISO 3166-1 alpha-3 code such as MEX or USA")
    return value


def _check_agency_id(value: str) -> str:
    if not is_agency_id(value) or agency_country(value) not in ISO_ALPHA3:
        raise ValueError(
            f"got {value!r}, expected <ISO alpha-3>-<AGENCY> such as MEX-FGR or USA-ATF"
        )
    return value


def _uuid_to_str(value: Any) -> Any:
    # Callers may hand uuid.UUID objects; the models keep canonical strings.
    return str(value) if isinstance(value, uuid.UUID) else value


def _check_uuid(value: str) -> str:
    # Every record carries several ids and every consumed record is validated: one C-level
    # match instead of a uuid.UUID round trip per id. Only a miss pays for the parse that
    # words the error.
    if CANONICAL_UUID_RE.fullmatch(value):
        return value
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise ValueError(f"got {value!r}, expected a UUID") from None
    if str(parsed) != value:
        # One spelling per id: ids are compared as strings by dedup and audit code.
        raise ValueError(f"got {value!r}, expected the canonical lower-case form {parsed}")
    return value


def _hex_to_bytes(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise ValueError("expected 64 hexadecimal digits") from None
    return value


def _check_digest(value: bytes) -> bytes:
    if len(value) != 32:
        raise ValueError(f"got {len(value)} bytes, expected a 32-byte SHA-256 digest")
    return value


def _to_utc(value: datetime) -> datetime:
    # Avro timestamp-micros carries no zone; normalising here makes JSON and Avro agree.
    return value.astimezone(UTC)


CountryCode = Annotated[str, AfterValidator(_check_country)]
AgencyId = Annotated[str, _Str(max_length=48), AfterValidator(_check_agency_id)]
UuidStr = Annotated[
    str, AvroLogical("uuid"), BeforeValidator(_uuid_to_str), AfterValidator(_check_uuid)
]
Sha256Digest = Annotated[
    bytes,
    AvroLogical("exchange.common.Sha256"),
    BeforeValidator(_hex_to_bytes),
    AfterValidator(_check_digest),
    PlainSerializer(lambda value: value.hex(), return_type=str, when_used="json"),
]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]

Label = Annotated[str, _Str(min_length=1, max_length=64)]
"""Identifiers and codes: case numbers, offense codes, calibres."""
ShortText = Annotated[str, _Str(min_length=1, max_length=256)]
"""Names, places, models, markings."""
Text = Annotated[str, _Str(min_length=1, max_length=4096)]
"""Descriptions, justifications, instructions."""
LongText = Annotated[str, _Str(min_length=1, max_length=65536)]
"""Narratives and raw STIX bundles."""
