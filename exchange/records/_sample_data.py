"""Reference tables for the sample generator. Unstable: not public API.

Everything here is public knowledge or invented: real place names with approximate
coordinates, common firearm makes and calibres, and fictional agencies' units, case
numbers, licensees and people. No real case, licensee or person is described.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AGENCIES",
    "FIREARMS",
    "HEADSTAMPS",
    "HIDING_PLACES",
    "LICENSEES",
    "PLACES",
    "AgencyInfo",
    "FirearmModel",
    "PlaceInfo",
]


@dataclass(frozen=True)
class PlaceInfo:
    country: str
    admin_area: str
    municipality: str
    locality: str
    latitude: float
    longitude: float
    port_of_entry: str | None = None
    border: bool = True


PLACES: tuple[PlaceInfo, ...] = (
    PlaceInfo("MEX", "Sonora", "Nogales", "Nogales", 31.3086, -110.9422, "Nogales-DeConcini"),
    PlaceInfo("MEX", "Sonora", "Hermosillo", "Hermosillo", 29.0729, -110.9559, border=False),
    PlaceInfo(
        "MEX",
        "Sonora",
        "San Luis Río Colorado",
        "San Luis Río Colorado",
        32.4561,
        -114.7719,
        "San Luis",
    ),
    PlaceInfo("MEX", "Sonora", "Agua Prieta", "Agua Prieta", 31.3272, -109.5486, "Douglas"),
    PlaceInfo("MEX", "Chihuahua", "Juárez", "Ciudad Juárez", 31.6904, -106.4245, "Paso del Norte"),
    PlaceInfo("MEX", "Chihuahua", "Chihuahua", "Chihuahua", 28.6353, -106.0889, border=False),
    PlaceInfo("MEX", "Chihuahua", "Ojinaga", "Ojinaga", 29.5645, -104.4164, "Presidio"),
    PlaceInfo(
        "MEX", "Tamaulipas", "Nuevo Laredo", "Nuevo Laredo", 27.4779, -99.5496, "Juárez-Lincoln"
    ),
    PlaceInfo("MEX", "Tamaulipas", "Reynosa", "Reynosa", 26.0508, -98.2979, "Hidalgo"),
    PlaceInfo("MEX", "Tamaulipas", "Matamoros", "Matamoros", 25.8690, -97.5027, "Gateway"),
    PlaceInfo("MEX", "Sinaloa", "Culiacán", "Culiacán", 24.8091, -107.3940, border=False),
    PlaceInfo("MEX", "Jalisco", "Guadalajara", "Guadalajara", 20.6597, -103.3496, border=False),
    PlaceInfo("USA", "TX", "El Paso County", "El Paso", 31.7619, -106.4850, "Paso del Norte"),
    PlaceInfo("USA", "TX", "Webb County", "Laredo", 27.5306, -99.4803, "Juárez-Lincoln"),
    PlaceInfo("USA", "TX", "Harris County", "Houston", 29.7604, -95.3698, border=False),
    PlaceInfo("USA", "TX", "Hidalgo County", "McAllen", 26.2034, -98.2300, "Hidalgo"),
    PlaceInfo("USA", "TX", "Bexar County", "San Antonio", 29.4241, -98.4936, border=False),
    PlaceInfo("USA", "AZ", "Pima County", "Tucson", 32.2226, -110.9747, border=False),
    PlaceInfo("USA", "AZ", "Santa Cruz County", "Nogales", 31.3404, -110.9343, "DeConcini"),
    PlaceInfo("USA", "AZ", "Maricopa County", "Phoenix", 33.4484, -112.0740, border=False),
)


@dataclass(frozen=True)
class AgencyInfo:
    agency_id: str
    name: str
    ncic_ori: str
    units: tuple[str, ...]
    source_system: str
    admin_area: str | None = None  # state agencies act only in their state


AGENCIES: tuple[AgencyInfo, ...] = (
    AgencyInfo(
        "MEX-FGR",
        "Fiscalía General de la República",
        "MXFGR0100",
        ("Agencia de Investigación Criminal", "UEIDAPLE"),
        "FGR-AIC",
    ),
    AgencyInfo(
        "MEX-SSPC",
        "Secretaría de Seguridad y Protección Ciudadana",
        "MXSSPC010",
        ("Guardia Nacional", "Unidad de Inteligencia"),
        "SSPC-PM",
    ),
    AgencyInfo(
        "MEX-SEDENA",
        "Secretaría de la Defensa Nacional",
        "MXSDN0010",
        ("Dirección General del Registro Federal de Armas", "Guarnición Militar"),
        "SEDENA-RFAFE",
    ),
    AgencyInfo(
        "MEX-FGJ-CHIH",
        "Fiscalía General del Estado de Chihuahua",
        "MXFGECH01",
        ("Fiscalía Zona Norte", "Laboratorio de Balística"),
        "FGE-CHIH",
        "Chihuahua",
    ),
    AgencyInfo(
        "MEX-FGJ-SON",
        "Fiscalía General de Justicia del Estado de Sonora",
        "MXFGJSO01",
        ("Vicefiscalía de Investigación", "Servicios Periciales"),
        "FGJ-SON",
        "Sonora",
    ),
    AgencyInfo(
        "MEX-FGJ-TAMPS",
        "Fiscalía General de Justicia del Estado de Tamaulipas",
        "MXFGJTM01",
        ("Unidad de Investigación", "Servicios Periciales"),
        "FGJ-TAMPS",
        "Tamaulipas",
    ),
    AgencyInfo(
        "USA-ATF",
        "Bureau of Alcohol, Tobacco, Firearms and Explosives",
        "DCATF0000",
        (
            "El Paso Field Office",
            "National Tracing Center",
            "NIBIN National Correlation and Training Center",
        ),
        "ATF-ETRACE",
    ),
    AgencyInfo(
        "USA-CBP",
        "U.S. Customs and Border Protection",
        "DCCBP0000",
        ("Office of Field Operations", "Border Patrol"),
        "CBP-SEIZURES",
    ),
    AgencyInfo(
        "USA-HSI",
        "Homeland Security Investigations",
        "DCHSI0000",
        ("Border Enforcement Security Task Force",),
        "HSI-CASES",
    ),
    AgencyInfo(
        "USA-EPPD",
        "El Paso Police Department",
        "TX0710200",
        ("Crime Scene Unit",),
        "EPPD-RMS",
        "TX",
    ),
    AgencyInfo(
        "USA-TPD", "Tucson Police Department", "AZ0100300", ("Crime Laboratory",), "TPD-RMS", "AZ"
    ),
)


@dataclass(frozen=True)
class FirearmModel:
    manufacturer: str
    code: str
    model: str
    caliber: str
    firearm_type: str
    origin: str
    importer: str | None = None
    privately_made: bool = False


FIREARMS: tuple[FirearmModel, ...] = (
    FirearmModel(
        "Glock GmbH", "GLK", "19 Gen5", "9mm Luger", "PISTOL", "AUT", "Glock Inc., Smyrna, GA"
    ),
    FirearmModel(
        "Glock GmbH", "GLK", "17 Gen4", "9mm Luger", "PISTOL", "AUT", "Glock Inc., Smyrna, GA"
    ),
    FirearmModel(
        "Colt's Manufacturing Company",
        "COL",
        "Government Model Super",
        ".38 Super",
        "PISTOL",
        "USA",
    ),
    FirearmModel("Smith & Wesson", "SW", "M&P9 M2.0", "9mm Luger", "PISTOL", "USA"),
    FirearmModel("Smith & Wesson", "SW", "M&P15 Sport II", "5.56x45mm", "RIFLE", "USA"),
    FirearmModel("Sturm, Ruger & Co.", "RUG", "AR-556", ".223 Rem", "RIFLE", "USA"),
    FirearmModel("Barrett Firearms", "BAR", "M82A1", ".50 BMG", "RIFLE", "USA"),
    FirearmModel("Barrett Firearms", "BAR", "M107A1", ".50 BMG", "RIFLE", "USA"),
    FirearmModel(
        "Cugir (Romarm)",
        "ROM",
        "WASR-10",
        "7.62x39mm",
        "RIFLE",
        "ROU",
        "Century International Arms, Delray Beach, FL",
    ),
    FirearmModel(
        "Zastava Arms",
        "ZAS",
        "ZPAP M70",
        "7.62x39mm",
        "RIFLE",
        "SRB",
        "Zastava Arms USA, Ocala, FL",
    ),
    FirearmModel("Palmetto State Armory", "PSA", "AK-P GF3", "7.62x39mm", "PISTOL", "USA"),
    FirearmModel("Palmetto State Armory", "PSA", "PA-15", "5.56x45mm", "RIFLE", "USA"),
    FirearmModel("Daniel Defense", "DDI", "DDM4 V7", "5.56x45mm", "RIFLE", "USA"),
    FirearmModel(
        "FN Herstal",
        "FN",
        "Five-seveN MK2",
        "5.7x28mm",
        "PISTOL",
        "BEL",
        "FN America, Fredericksburg, VA",
    ),
    FirearmModel(
        "Taurus Armas",
        "TAU",
        "G2C",
        "9mm Luger",
        "PISTOL",
        "BRA",
        "Taurus International, Bainbridge, GA",
    ),
    FirearmModel(
        "Polymer80 (privately made)",
        "PMF",
        "PF940C",
        "9mm Luger",
        "PISTOL",
        "USA",
        privately_made=True,
    ),
)

HEADSTAMPS: dict[str, tuple[str, ...]] = {
    "9mm Luger": ("WIN 9MM LUGER", "FC 9MM LUGER", "BLAZER 9MM LUGER", "S&B 9MM LUGER"),
    ".38 Super": ("WIN 38 SUPER AUTO +P", "R-P 38 SUPER AUTO"),
    "5.56x45mm": ("LC 21", "PMC 5.56", "FC 5.56"),
    ".223 Rem": ("FC 223 REM", "WIN 223 REM", "HORNADY 223 REM"),
    "7.62x39mm": ("WOLF 7.62x39", "TULA 7.62x39", "PMC 7.62x39"),
    ".50 BMG": ("LC 18", "HORNADY 50 BMG"),
    "5.7x28mm": ("FN 5.7x28",),
}

HIDING_PLACES: dict[str, tuple[str, ...]] = {
    "es": (
        "un compartimento oculto en el piso de la batea",
        "el tanque de combustible",
        "cajas de cartón con aparatos electrodomésticos",
        "las puertas y paneles laterales del vehículo",
    ),
    "en": (
        "a false floor in the truck bed",
        "the spare tire",
        "boxes of household goods",
        "the door panels of a southbound sedan",
    ),
}

# Fictional licensees (names and numbers invented) in border states.
LICENSEES: tuple[tuple[str, str, str, str, float, float], ...] = (
    ("5-74-071-01-6A-01234", "Desert Sportsman Supply", "El Paso", "TX", 31.79, -106.42),
    ("5-74-479-01-7B-04567", "Border Outfitters LLC", "Laredo", "TX", 27.53, -99.49),
    ("5-76-201-01-8C-07890", "Bayou Firearms & Pawn", "Houston", "TX", 29.75, -95.36),
    ("9-86-019-01-5D-02345", "Old Pueblo Guns", "Tucson", "AZ", 32.23, -110.95),
    ("9-86-013-01-9E-05678", "Valley Tactical", "Phoenix", "AZ", 33.45, -112.07),
)
