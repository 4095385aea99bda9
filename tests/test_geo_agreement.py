"""Per-country request counts on real logs agree with GoAccess reading the same .mmdb.

MaxMind's test databases place almost none of the corpora's addresses, so the test also builds a
country database (mmdb-writer) that places every IPv4 /8 and the IPv6 unicast space, giving both
tools thousands of real addresses to place.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from independent import goaccess_summary
from mmdb_writer import MMDBWriter
from netaddr import IPSet
from shared_corpora import CORPORA, needs_corpora

from pipeline.geo.geoip import GeoIP
from pipeline.ingest.run import ingest_file
from pipeline.settings import Settings
from pipeline.warehouse.store import Warehouse

pytestmark = needs_corpora
KEY = b"geo-agreement-key-0123456789abcd"
CODES = [("DE", "EU", "Germany"), ("US", "NA", "United States"), ("JP", "AS", "Japan"),
         ("BR", "SA", "Brazil"), ("ZA", "AF", "South Africa"), ("AU", "OC", "Australia"),
         ("FR", "EU", "France")]  # fmt: skip
FILES = [
    "elastic_apache_logs/apache_logs",
    "logparser_hackers_access/hackers-access.log",
    "lnav_test_logs/logfile_shop_access_log.0",
]


def _record(i: int) -> dict:
    iso, continent, name = CODES[i % len(CODES)]
    return {
        "country": {"iso_code": iso, "names": {"en": name}},
        "continent": {"code": continent, "names": {"en": continent}},
    }


@pytest.fixture(scope="module")
def country_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    w = MMDBWriter(
        ip_version=6, ipv4_compatible=True, database_type="GeoIP2-Country", languages=["en"]
    )
    for octet in range(1, 224):
        if octet in (10, 127):
            continue  # private and loopback stay unknown, as in real databases
        w.insert_network(IPSet([f"{octet}.0.0.0/8"]), _record(octet))
    w.insert_network(IPSet(["2000::/4"]), _record(2))  # JP
    w.insert_network(IPSet(["2a00::/8"]), _record(0))  # DE
    path = tmp_path_factory.mktemp("mmdb") / "country.mmdb"
    w.to_db_file(str(path))
    return path


def ours(path: Path, db: Path, tmp: Path, city: bool = False) -> Counter:
    geo = (
        GeoIP.open(city=db, use_default=False)
        if city
        else GeoIP.open(country=db, use_default=False)
    )
    wh = Warehouse(tmp)
    try:
        ingest_file(path, wh, Settings(), geo=geo, ip_key=KEY)
    finally:
        geo.close()
    con = wh.connect(read_only=True)
    rows = con.sql(
        "SELECT coalesce(country, 'Unknown'), count(*) FROM requests GROUP BY ALL"
    ).fetchall()
    con.close()
    return Counter(dict(rows))


@pytest.mark.parametrize("rel", FILES)
def test_country_counts_agree_with_goaccess(rel: str, country_db: Path, tmp_path: Path) -> None:
    path = CORPORA / rel
    theirs = goaccess_summary([path], "COMBINED", geoip_db=country_db)
    mine = ours(path, country_db, tmp_path / "wh")
    assert sum(mine.values()) == theirs.total_requests
    assert mine == Counter(theirs.countries)
    assert len(mine) >= 2  # the database really placed addresses


def test_maxmind_city_test_database_agrees(tmp_path: Path) -> None:
    # MaxMind's own test database and addresses from its test ranges, some unknown to it
    db = CORPORA / "maxmind_test_mmdb" / "GeoLite2-City-Test.mmdb"
    ips = ["81.2.69.142", "175.16.199.1", "216.160.83.57", "89.160.20.113", "2a02:cf40::1",
           "2001:218::1", "67.43.156.1", "8.8.8.8", "192.0.2.1"]  # fmt: skip
    path = tmp_path / "access.log"
    with path.open("w") as f:
        for i, ip in enumerate(ips):
            for j in range(i + 1):
                f.write(
                    f'{ip} - - [20/Nov/2026:10:00:{j:02d} +0000] "GET /alpine/ HTTP/1.1" 200 {i} "-" "curl/8.0"\n'
                )
    theirs = goaccess_summary([path], "COMBINED", geoip_db=db)
    mine = ours(path, db, tmp_path / "wh", city=True)
    assert mine == Counter(theirs.countries)
    assert mine["GB"] == 1 and mine["CN"] == 2 and mine["Unknown"] >= 17


def test_country_database_given_by_setting(country_db: Path, tmp_path: Path) -> None:
    # the same agreement through the command line, the database named by DLCDN_GEOIP_COUNTRY
    import os
    import subprocess
    import sys

    path = CORPORA / "logparser_hackers_access/hackers-access.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLCDN_")}
    env |= {
        "DLCDN_WAREHOUSE": str(tmp_path / "wh"),
        "DLCDN_IP_KEY": "x" * 20,
        "DLCDN_GEOIP_COUNTRY": str(country_db),
    }
    dlcdn = str(Path(sys.executable).parent / "dlcdn")
    subprocess.run([dlcdn, "ingest", str(path)], env=env, check=True, capture_output=True)
    out = subprocess.run(
        [
            dlcdn,
            "sql",
            "SELECT coalesce(country, 'Unknown') AS c, count(*) AS n FROM requests GROUP BY ALL",
            "--format",
            "csv",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    mine = Counter({c: int(n) for c, n in (row.split(",") for row in out.stdout.splitlines()[1:])})
    assert mine == Counter(goaccess_summary([path], "COMBINED", geoip_db=country_db).countries)
