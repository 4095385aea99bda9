"""Every file in sql/ on a small fixture warehouse, with the exact rows it must return.

The fixture: 21 Fastly lines over three days (Mon 16 and Tue 17 Nov, Mon 23 Nov 2026) from four
networks placed by a City + ASN database built with mmdb-writer, plus one unplaced client.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from pipeline.geo.geoip import GeoIP
from pipeline.ingest.run import ingest_file
from pipeline.settings import Settings
from pipeline.warehouse import queries, rollups
from pipeline.warehouse.store import Warehouse

SQL = Path(__file__).resolve().parents[1] / "sql"
NETS = {
    # network: (country, continent, lat, lon, asn, org)
    "192.0.2.0/24": ("DE", "EU", 50.1, 8.7, 3320, "Deutsche Telekom"),
    "198.51.100.0/24": ("US", "NA", 38.9, -77.0, 7922, "Comcast"),
    "203.0.113.0/24": ("JP", "AS", 35.7, 139.7, 2516, "KDDI"),
    "2001:db8::/32": ("NL", "EU", 52.4, 4.9, 1136, "KPN"),
}
# ip, day (Nov 2026), path, status, bytes, user agent, POP, cache state
LINES = [
    (
        "192.0.2.1",
        16,
        "/alpine/v3.22/main/x86_64/APKINDEX.tar.gz",
        304,
        0,
        "libfetch/2.0",
        "FRA",
        "HIT",
    ),
    (
        "192.0.2.1",
        16,
        "/alpine/v3.22/main/x86_64/busybox-1.37.0-r0.apk",
        200,
        500_000,
        "libfetch/2.0",
        "FRA",
        "HIT",
    ),
    (
        "192.0.2.2",
        16,
        "/alpine/v3.22/main/x86/APKINDEX.tar.gz",
        200,
        1_000_000,
        "libfetch/2.0",
        "FRA",
        "MISS",
    ),
    (
        "198.51.100.5",
        16,
        "/alpine/v3.15/main/aarch64/APKINDEX.tar.gz",
        304,
        0,
        "libfetch/2.0",
        "IAD",
        "HIT",
    ),
    (
        "198.51.100.5",
        16,
        "/alpine/v3.15/community/aarch64/py3-foo-1.0-r0.apk",
        200,
        200_000,
        "libfetch/2.0",
        "IAD",
        "PASS",
    ),
    (
        "198.51.100.6",
        17,
        "/alpine/latest-stable/main/x86_64/APKINDEX.tar.gz",
        200,
        1_000_000,
        "curl/8.5.0",
        "IAD",
        "HIT",
    ),
    (
        "203.0.113.9",
        17,
        "/alpine/v3.22/releases/x86_64/alpine-minirootfs-3.22.2-x86_64.tar.gz",
        200,
        3_000_000,
        "curl/8.5.0",
        "NRT",
        "MISS",
    ),
    (
        "203.0.113.9",
        17,
        "/alpine/v3.22/releases/x86_64/alpine-standard-3.22.2-x86_64.iso",
        206,
        50_000_000,
        "Mozilla/5.0 (X11)",
        "NRT",
        "HIT",
    ),
    (
        "2001:db8::7",
        17,
        "/alpine/edge/testing/riscv64/APKINDEX.tar.gz",
        304,
        0,
        "libfetch/2.0",
        "AMS",
        "HIT-CLUSTER",
    ),
    (
        "2001:db8::7",
        23,
        "/alpine/edge/main/x86_64/busybox-1.37.0-r1.apk",
        200,
        600_000,
        "libfetch/2.0",
        "AMS",
        "MISS-CLUSTER",
    ),
    (
        "192.0.2.1",
        23,
        "/alpine/v3.22/main/x86_64/APKINDEX.tar.gz",
        304,
        0,
        "libfetch/2.0",
        "FRA",
        "HIT",
    ),
    ("10.0.0.1", 23, "/", 404, 100, "Mozilla/5.0 (compatible; Googlebot/2.1)", "FRA", "PASS"),
    # a CI loop in 192.0.2.0/24 on the 16th: nine more index checks
    *[
        (
            "192.0.2.50",
            16,
            "/alpine/v3.22/main/x86_64/APKINDEX.tar.gz",
            304,
            0,
            "libfetch/2.0",
            "FRA",
            "HIT",
        )
    ]
    * 9,
]
RANGE = {"start": "2026-11-16", "end": "2026-11-23"}


def _db(path: Path, kind: str) -> Path:
    w = MMDBWriter(
        ip_version=6, ipv4_compatible=True, database_type=f"GeoLite2-{kind}", languages=["en"]
    )
    for net, (iso, cont, lat, lon, asn, org) in NETS.items():
        record = (
            {
                "country": {"iso_code": iso},
                "continent": {"code": cont},
                "location": {"latitude": lat, "longitude": lon},
            }
            if kind == "City"
            else {"autonomous_system_number": asn, "autonomous_system_organization": org}
        )
        w.insert_network(IPSet([net]), record)
    w.to_db_file(str(path))
    return path


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("sqlfix")
    log = tmp / "fixture.log"
    with log.open("w") as f:
        for i, (ip, day, path, status, nbytes, ua, pop, cache) in enumerate(LINES):
            rec = {
                "timestamp": f"2026-11-{day:02d}T10:00:{i:02d}Z",
                "client_ip": ip,
                "request_method": "GET",
                "url": path,
                "request_protocol": "HTTP/2",
                "response_status": status,
                "response_body_size": nbytes,
                "request_user_agent": ua,
                "server_datacenter": pop,
                "response_state": cache,
            }
            f.write(f"<134>2026-11-{day:02d}T10:00:00Z cache-x dlcdn[1]: {json.dumps(rec)}\n")
    geo = GeoIP.open(
        city=_db(tmp / "city.mmdb", "City"), asn=_db(tmp / "asn.mmdb", "ASN"), use_default=False
    )
    r = ingest_file(log, Warehouse(tmp / "wh"), Settings(), geo=geo, ip_key=b"k" * 32)
    geo.close()
    assert r.rows_parsed == len(LINES)
    rollups.build_days(Warehouse(tmp / "wh"), r.dates)  # what `dlcdn ingest` does next
    return tmp / "wh"


def rows(wh: Path, name: str, **params: object) -> list[tuple]:
    frame = queries.run(wh, queries.sql_file(name), {**RANGE, **params})
    return [tuple(r) for r in frame.iter_rows()]


def test_every_sql_file_is_tested() -> None:
    tested = {n.removeprefix("test_") for n in globals() if n.startswith("test_")}
    untested = (
        {p.stem for p in SQL.glob("*.sql")}
        - tested
        - {"daily_traffic", "weekly_traffic", "traffic_by_day"}
    )
    assert (
        untested == set()
    )  # daily/weekly_traffic: tests/test_dagster.py; traffic_by_day: test_cli


def test_traffic_by_country(wh: Path) -> None:
    d16, d23 = dt.date(2026, 11, 16), dt.date(2026, 11, 23)
    assert rows(wh, "traffic_by_country", grain="week") == [
        (d16, "EU", "DE", 12, 1_500_000, 3),
        (d16, "NA", "US", 3, 1_200_000, 2),
        (d16, "AS", "JP", 2, 53_000_000, 1),
        (d16, "EU", "NL", 1, 0, 1),
        (d23, "EU", "DE", 1, 0, 1),
        (d23, "EU", "NL", 1, 600_000, 1),
        (d23, None, None, 1, 100, 1),
    ]
    by_month = rows(wh, "traffic_by_country", grain="month")
    assert [(r[0], r[2], r[3]) for r in by_month] == [
        (dt.date(2026, 11, 1), "DE", 13),
        (dt.date(2026, 11, 1), "US", 3),
        (dt.date(2026, 11, 1), "JP", 2),
        (dt.date(2026, 11, 1), "NL", 2),
        (dt.date(2026, 11, 1), None, 1),
    ]


def test_traffic_by_subregion(wh: Path) -> None:
    assert rows(wh, "traffic_by_subregion", grain="month") == [
        (dt.date(2026, 11, 1), "EU", "Western Europe", 15, 2_100_000, 4),
        (dt.date(2026, 11, 1), "NA", "Northern America", 3, 1_200_000, 2),
        (dt.date(2026, 11, 1), "AS", "Eastern Asia", 2, 53_000_000, 1),
        (dt.date(2026, 11, 1), None, None, 1, 100, 1),
    ]


def test_traffic_by_asn(wh: Path) -> None:
    assert rows(wh, "traffic_by_asn", grain="month", limit=2) == [
        (dt.date(2026, 11, 1), 2516, "KDDI", 2, 53_000_000, 1),
        (dt.date(2026, 11, 1), 3320, "Deutsche Telekom", 13, 1_500_000, 3),
    ]


def test_traffic_by_arch(wh: Path) -> None:
    assert rows(wh, "traffic_by_arch") == [
        # bytes in all: 56,300,100
        ("x86_64", 16, 55_100_000, 76.19, 97.87),
        ("aarch64", 2, 200_000, 9.52, 0.36),
        ("riscv64", 1, 0, 4.76, 0.0),
        ("x86", 1, 1_000_000, 4.76, 1.78),
        (None, 1, 100, 4.76, 0.0),
    ]


def test_ci_arch_share(wh: Path) -> None:
    d16, d23 = dt.date(2026, 11, 16), dt.date(2026, 11, 23)
    assert rows(wh, "ci_arch_share", grain="week") == [
        (d16, "other", 3, 200_000, 16.67, 0.36),
        (d16, "x86", 1, 1_000_000, 5.56, 1.8),  # 1,000,000 of 55,700,000 bytes
        (d16, "x86_64", 14, 54_500_000, 77.78, 97.85),
        (d23, "x86_64", 2, 600_000, 100.0, 100.0),
    ]


def test_traffic_by_branch(wh: Path) -> None:
    assert rows(wh, "traffic_by_branch") == [
        ("v3.22", "supported", 15, 54_500_000),
        ("edge", "supported", 2, 600_000),
        ("v3.15", "end-of-life", 2, 200_000),
        ("v3.24", "supported", 1, 1_000_000),  # latest-stable on 17 Nov 2026
    ]


def test_traffic_by_repo(wh: Path) -> None:
    assert rows(wh, "traffic_by_repo") == [
        ("main", 16, 3_100_000),
        ("releases", 2, 53_000_000),
        ("community", 1, 200_000),
        ("testing", 1, 0),
        (None, 1, 100),
    ]


def test_traffic_by_file_kind(wh: Path) -> None:
    assert rows(wh, "traffic_by_file_kind") == [
        ("apkindex", 15, 2_000_000),
        ("package", 3, 1_300_000),
        ("release", 2, 53_000_000),
        ("other", 1, 100),
    ]


def test_traffic_by_client_kind(wh: Path) -> None:
    assert rows(wh, "traffic_by_client_kind") == [
        ("apk", 17, 2_300_000, 5),
        ("curl", 2, 4_000_000, 2),
        ("browser", 1, 50_000_000, 1),
        ("crawler", 1, 100, 1),
    ]


def test_cache_by_pop(wh: Path) -> None:
    assert rows(wh, "cache_by_pop") == [
        ("NRT", 2, 0.5, 53_000_000, 3_000_000),
        ("FRA", 14, 0.8571, 1_500_100, 1_000_100),
        ("AMS", 2, 0.5, 600_000, 600_000),
        ("IAD", 3, 0.6667, 1_200_000, 200_000),
    ]


def test_origin_bytes_by_region(wh: Path) -> None:
    assert rows(wh, "origin_bytes_by_region") == [
        ("AS", "JP", 2, 0.5, 3_000_000),
        ("EU", "DE", 13, 0.9231, 1_000_000),
        ("EU", "NL", 2, 0.5, 600_000),
        ("NA", "US", 3, 0.6667, 200_000),
        (None, None, 1, 0.0, 100),
    ]


def test_top_packages(wh: Path) -> None:
    assert rows(wh, "top_packages", limit=5) == [
        ("busybox", 2, 1_100_000, 2),
        ("py3-foo", 1, 200_000, 1),
    ]


def test_top_release_artefacts(wh: Path) -> None:
    assert rows(wh, "top_release_artefacts", limit=5) == [
        ("release", "standard", "3.22.2", "x86_64", 1, 50_000_000),
        ("release", "minirootfs", "3.22.2", "x86_64", 1, 3_000_000),
    ]


def test_release_adoption(wh: Path) -> None:
    d16, d23 = dt.date(2026, 11, 16), dt.date(2026, 11, 23)
    assert rows(wh, "release_adoption", grain="week") == [
        (d16, "v3.22", "supported", 11, 78.57),
        (d16, "edge", "supported", 1, 7.14),
        (d16, "v3.15", "end-of-life", 1, 7.14),
        (d16, "v3.24", "supported", 1, 7.14),
        (d23, "v3.22", "supported", 1, 100.0),
    ]


def test_heavy_hitters(wh: Path) -> None:
    # 16th: 192.0.2.0/24 made 12 requests, 198.51.100.0/24 made 2: median 7.
    # 17th: 203.0.113.0/24 made 2, the two other networks 1 each: median 1.
    assert rows(wh, "heavy_hitters", factor=1.5) == [
        (dt.date(2026, 11, 16), "192.0.2.0/24", "DE", 12, 1_500_000, 3, 1.7, 85.71),
        (dt.date(2026, 11, 17), "203.0.113.0/24", "JP", 2, 53_000_000, 2, 2.0, 50.0),
    ]
    assert rows(wh, "heavy_hitters", factor=2) == []


def test_egress_daily(wh: Path) -> None:
    assert rows(wh, "egress_daily") == [
        (dt.date(2026, 11, 16), 1_700_000, 1_200_000, 14),
        (dt.date(2026, 11, 17), 54_000_000, 3_000_000, 4),
        (dt.date(2026, 11, 23), 600_100, 600_100, 3),
    ]


def test_placement_demand(wh: Path) -> None:
    assert rows(wh, "placement_demand") == [
        (36.0, 140.0, 53_000_000, 2),
        (50.0, 9.0, 1_500_000, 13),
        (39.0, -77.0, 1_200_000, 3),
        (52.0, 5.0, 600_000, 2),
    ]


def test_placement_origin_demand(wh: Path) -> None:
    assert rows(wh, "placement_origin_demand") == [
        (35.77, 140.39, "NRT", 3_000_000, 1),
        (50.03, 8.56, "FRA", 1_000_100, 2),
        (52.31, 4.76, "AMS", 600_000, 1),
        (38.94, -77.46, "IAD", 200_000, 1),
    ]


def test_report_headline(wh: Path) -> None:
    # 16-17 Nov: 18 requests from 7 addresses; MISS/PASS bytes 1,000,000 + 200,000 + 3,000,000
    assert rows(wh, "report_headline", start="2026-11-16", end="2026-11-22") == [
        (18, 55_700_000, 7, 4_200_000)
    ]
    assert rows(wh, "report_headline", start="2027-01-04", end="2027-01-10") == [(0, 0, 0, 0)]


def test_report_quality(wh: Path) -> None:
    # one file of 21 lines, all parsed, holding 16-23 Nov; whether it is late depends on when this
    # run ingested it, so that flag is worked out here from the manifest (fixed dates: below)
    con = Warehouse(wh).connect(read_only=True)
    try:
        ((ingested_at,),) = con.sql("SELECT ingested_at FROM ingested_files").fetchall()
    finally:
        con.close()
    late = int(ingested_at.astimezone(dt.UTC).date() > dt.date(2026, 11, 24))
    assert rows(wh, "report_quality") == [(1, 21, 21, 0, 0.0, late)]
    assert rows(wh, "report_quality", start="2027-01-04", end="2027-01-10") == [
        (0, 0, 0, 0, 0.0, 0)
    ]


def test_report_quality_late_files_on_fixed_dates() -> None:
    # the statement on a hand-made manifest, so the "late" rule is checked without the clock:
    # late = ingested (UTC) more than one day after the last day the file holds
    con = duckdb.connect()
    con.sql(
        "CREATE TABLE ingested_files (dates DATE[], lines_total BIGINT, lines_blank BIGINT, "
        "rows_parsed BIGINT, rows_rejected BIGINT, ingested_at TIMESTAMPTZ)"
    )
    con.sql("SET TimeZone = 'Pacific/Auckland'")  # the rule is in UTC whatever the session's zone
    con.executemany(
        "INSERT INTO ingested_files VALUES (?, ?, ?, ?, ?, ?)",
        [  # a file per case: (its days, lines, blank, parsed, rejected, when it was ingested)
            (["2026-11-20"], 10, 0, 10, 0, "2026-11-21 23:59:59+00"),  # next day: on time
            (["2026-11-21"], 10, 2, 6, 2, "2026-11-23 00:00:01+00"),  # two days on: late
            (["2026-11-16", "2026-11-22"], 5, 0, 4, 1, "2026-11-23 12:00:00+00"),  # on time
            (["2026-11-09"], 7, 0, 7, 0, "2026-12-01 00:00:00+00"),  # another week: not counted
        ],
    )
    got = con.execute(
        queries.sql_file("report_quality"), {"start": "2026-11-16", "end": "2026-11-22"}
    ).fetchall()
    # 3 files, 25 lines, 20 parsed, 3 rejected of 23 non-blank lines, 1 late
    assert got == [(3, 25, 20, 3, round(3 / 23, 6), 1)]
