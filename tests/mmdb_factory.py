"""Small, real MaxMind DB files for tests, written with mmdb-writer and read back with maxminddb.

Each database comes in two flavours with the record layouts of the real products:
- "geoip2": MaxMind GeoIP2/GeoLite2 (geoname ids, `registered_country`, `accuracy_radius`, ...);
- "dbip": DB-IP Lite, as checked against dbip-city-lite 2023-04 (no `registered_country`, no
  `accuracy_radius`, city names in English only, `is_in_european_union` always present, and no
  `geoname_id` on dependent territories such as HK).

The networks and expected values are module constants so tests can state what they expect.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from mmdb_writer import MMDBWriter
from netaddr import IPSet

Flavour = Literal["geoip2", "dbip"]

# A fixed build time (2023-04-01 00:26:17 UTC, the default DB-IP City Lite's) so describe() is
# testable; mmdb-writer would stamp the current time.
BUILD_EPOCH = 1680308777

CONTINENT_NAMES = {
    "AF": "Africa",
    "AS": "Asia",
    "EU": "Europe",
    "NA": "North America",
    "OC": "Oceania",
    "SA": "South America",
}

# (network, country, continent, latitude, longitude); None leaves the part out of the record.
CITY_NETWORKS: list[tuple[str, str | None, str | None, float | None, float | None]] = [
    ("81.2.69.0/24", "GB", "EU", 51.5142, -0.0931),
    ("175.16.199.0/24", "CN", "AS", 43.88, 125.3228),
    ("216.160.83.56/29", "US", "NA", 47.6109, -122.3303),
    ("41.0.0.0/16", "ZA", "AF", -26.0063, 28.1292),
    ("67.43.156.0/24", "BT", "AS", 27.5, 90.5),
    ("46.99.0.0/16", "XK", "EU", 42.6727, 21.1669),
    ("2a02:cf40::/29", "NO", "EU", 62.0, 10.0),
    ("2001:218::/32", "JP", "AS", 35.68536, 139.75309),
    # Continent and location without a country, as MaxMind has for 2a02:d500::/29.
    ("2a02:d500::/29", None, "EU", 48.69096, 9.14062),
]
# Records with a special shape, keyed by network (see _city_record).
REGISTERED_ONLY = "198.51.100.0/24"  # only `registered_country` (geoip2) / nothing placed (dbip)
EMPTY_STRINGS = "203.0.113.0/24"  # iso_code "" and code "": must come out NULL

# The country database disagrees with the city database on 81.2.69.0/24 (FR, not GB), lacks
# 41.0.0.0/16 and adds 192.0.2.0/24, so tests can see which database each column came from.
COUNTRY_NETWORKS: list[tuple[str, str, str]] = [
    ("81.2.69.0/24", "FR", "EU"),
    ("175.16.199.0/24", "CN", "AS"),
    ("2a02:cf40::/29", "NO", "EU"),
    ("192.0.2.0/24", "US", "NA"),
]

ASN_NETWORKS: list[tuple[str, int, str]] = [
    ("81.2.69.0/24", 20712, "Andrews & Arnold Ltd"),
    ("175.16.199.0/24", 4837, "CHINA UNICOM China169 Backbone"),
    ("216.160.83.56/29", 209, "CENTURYLINK-US-LEGACY-QWEST"),
    ("2a02:cf40::/29", 29695, "Altibox AS"),
    ("41.0.0.0/16", 4200000001, "A 32-bit private-use AS"),
]
ASN_ZERO = "100.64.0.0/10"  # AS0 with an empty organisation: "no AS", must come out NULL

DATABASE_TYPES = {
    ("city", "geoip2"): "GeoLite2-City",
    ("city", "dbip"): "DBIP-City-Lite",
    ("country", "geoip2"): "GeoLite2-Country",
    ("country", "dbip"): "DBIP-Country-Lite",
    ("asn", "geoip2"): "GeoLite2-ASN",
    ("asn", "dbip"): "DBIP-ASN-Lite (compat=GeoLite2-ASN)",
}


class _Writer(MMDBWriter):
    """MMDBWriter with a fixed build_epoch."""

    def _build_meta(self) -> dict[str, Any]:
        return {**super()._build_meta(), "build_epoch": BUILD_EPOCH}


def _writer(kind: str, flavour: Flavour, ip_version: int) -> _Writer:
    return _Writer(
        ip_version=ip_version,
        database_type=DATABASE_TYPES[(kind, flavour)],
        languages=["en", "de"],
        description=f"dlcdn test {kind} database ({flavour} layout)",
        ipv4_compatible=ip_version == 6,
    )


def _insert(writer: _Writer, network: str, record: dict[str, Any]) -> None:
    if writer.ip_version == 4 and ":" in network:
        return
    writer.insert_network(IPSet([network]), record)


def _names(en: str, flavour: Flavour) -> dict[str, str]:
    return {"en": en} if flavour == "dbip" else {"en": en, "de": en}


def _country(iso: str, flavour: Flavour) -> dict[str, Any]:
    record: dict[str, Any] = {"iso_code": iso, "names": _names(f"Country {iso}", flavour)}
    if flavour == "dbip":
        record["is_in_european_union"] = iso in {"FR", "DK"}
        if iso != "XK":  # DB-IP leaves geoname_id out for some territories
            record["geoname_id"] = 1000 + sum(map(ord, iso))
    else:
        record["geoname_id"] = 1000 + sum(map(ord, iso))
    return record


def _continent(code: str, flavour: Flavour) -> dict[str, Any]:
    names = _names(CONTINENT_NAMES[code], flavour)
    return {"code": code, "geoname_id": 6255000 + sum(map(ord, code)), "names": names}


def _place_record(
    iso: str | None, continent: str | None, flavour: Flavour, registered: str | None = None
) -> dict[str, Any]:
    record: dict[str, Any] = {}
    if continent:
        record["continent"] = _continent(continent, flavour)
    if iso:
        record["country"] = _country(iso, flavour)
    if flavour == "geoip2" and (registered or iso):
        record["registered_country"] = _country(registered or iso or "", flavour)
    return record


def _city_record(
    iso: str | None, continent: str | None, lat: float | None, lon: float | None, flavour: Flavour
) -> dict[str, Any]:
    # Bhutan's block is registered in Romania in MaxMind's own test data; copy that quirk.
    record = _place_record(iso, continent, flavour, registered="RO" if iso == "BT" else None)
    if lat is not None and lon is not None:
        location: dict[str, Any] = {"latitude": lat, "longitude": lon}
        if flavour == "geoip2":
            location |= {"accuracy_radius": 100, "time_zone": "Europe/London"}
        record["location"] = location
    if iso:
        record["city"] = {"names": _names(f"City in {iso}", flavour)}
        record["subdivisions"] = [{"names": _names(f"Region of {iso}", flavour)}]
    return record


def write_city(path: Path, flavour: Flavour = "geoip2", ip_version: int = 6) -> Path:
    """A City database (GeoLite2-City or DBIP-City-Lite layout) at `path`."""
    writer = _writer("city", flavour, ip_version)
    for network, iso, continent, lat, lon in CITY_NETWORKS:
        _insert(writer, network, _city_record(iso, continent, lat, lon, flavour))
    if flavour == "geoip2":
        _insert(writer, REGISTERED_ONLY, {"registered_country": _country("US", flavour)})
    else:
        _insert(writer, REGISTERED_ONLY, {"city": {"names": {"en": "Nowhere"}}})
    _insert(writer, EMPTY_STRINGS, {"country": {"iso_code": ""}, "continent": {"code": ""}})
    writer.to_db_file(str(path))
    return path


def write_country(path: Path, flavour: Flavour = "geoip2", ip_version: int = 6) -> Path:
    """A Country database (GeoLite2-Country or DBIP-Country-Lite layout) at `path`."""
    writer = _writer("country", flavour, ip_version)
    for network, iso, continent in COUNTRY_NETWORKS:
        _insert(writer, network, _place_record(iso, continent, flavour))
    if flavour == "geoip2":
        _insert(writer, REGISTERED_ONLY, {"registered_country": _country("US", flavour)})
    writer.to_db_file(str(path))
    return path


def write_asn(path: Path, flavour: Flavour = "geoip2", ip_version: int = 6) -> Path:
    """An ASN database (GeoLite2-ASN or DBIP-ASN-Lite layout, the same keys) at `path`."""
    writer = _writer("asn", flavour, ip_version)
    for network, number, org in ASN_NETWORKS:
        record = {"autonomous_system_number": number, "autonomous_system_organization": org}
        _insert(writer, network, record)
    _insert(writer, ASN_ZERO, {"autonomous_system_number": 0, "autonomous_system_organization": ""})
    writer.to_db_file(str(path))
    return path
