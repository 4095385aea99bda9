"""The rollups: every library question answered from them equals its raw scan (sql/raw/), the
client sketch counts within its documented error, and a day's rollups follow its requests.

The fixture: four generated days (Fri 30 Oct to Mon 2 Nov 2026: a month and an ISO week change)
of Fastly logs plus a mirror log, placed by the embedded GeoIP database and an ASN database
built here for the generator's networks.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet
from polars.testing import assert_frame_equal

from pipeline.geo.geoip import GeoIP
from pipeline.ingest.run import ingest_file
from pipeline.schema import TABLES
from pipeline.settings import Settings
from pipeline.synthetic.generate import generate
from pipeline.warehouse import queries, rollups
from pipeline.warehouse.store import Warehouse

SQL = Path(__file__).resolve().parents[1] / "sql"
BIN = Path(sys.executable).parent
START = dt.date(2026, 10, 30)
DAYS = [START + dt.timedelta(days=i) for i in range(4)]
KEY = b"k" * 32
ALL = {"start": "2026-10-30", "end": "2026-11-02"}
ONE_DAY = {"start": "2026-11-01", "end": "2026-11-01"}

# Every library question with the parameters it is compared under.
CASES: list[tuple[str, dict[str, object]]] = [
    *[(n, {**ALL, "grain": g}) for n in ("traffic_by_country", "traffic_by_subregion") for g in ("day", "week", "month")],
    *[("traffic_by_asn", {**ALL, "grain": g, "limit": 5}) for g in ("day", "week", "month")],
    *[("ci_arch_share", {**ALL, "grain": g}) for g in ("week", "month")],
    *[("release_adoption", {**ALL, "grain": g}) for g in ("day", "month")],
    *[(n, p) for n in ("traffic_by_arch", "traffic_by_branch", "traffic_by_repo", "traffic_by_file_kind", "traffic_by_client_kind", "cache_by_pop", "origin_bytes_by_region", "egress_daily", "placement_demand", "placement_origin_demand", "report_headline", "traffic_by_day") for p in (ALL, ONE_DAY)],
    ("top_packages", {**ALL, "limit": 25}),
    ("top_release_artefacts", {**ALL, "limit": 25}),
    ("heavy_hitters", {**ALL, "factor": 8}),
    ("heavy_hitters", {**ONE_DAY, "factor": 3}),
]  # fmt: skip


def _asn_db(path: Path) -> Path:
    """An ASN database over the generator's networks: a handful of operators per country."""
    w = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-ASN")
    text = resources.files("pipeline.data").joinpath("country_networks.csv").read_text()
    for row in csv.DictReader(text.splitlines()):
        n = int(hashlib.sha256(row["cidr"].encode()).hexdigest(), 16) % 3
        asn = 64_512 + 10 * (ord(row["country"][0]) * 26 + ord(row["country"][1])) + n
        record = {"autonomous_system_number": asn, "autonomous_system_organization": f"AS{asn}"}
        w.insert_network(IPSet([row["cidr"]]), record)
    w.to_db_file(str(path))
    return path


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    tmp = tmp_path_factory.mktemp("rollups")
    files = generate(tmp / "landing", START, len(DAYS), 6000, fmt="fastly", seed=5)
    files += generate(tmp / "mirror", START, len(DAYS), 800, fmt="combined", seed=6)
    w = Warehouse(tmp / "wh")
    geo = GeoIP.open(asn=_asn_db(tmp / "asn.mmdb"))
    assert geo.describe(), "no GeoIP database: run make setup"
    days: set[dt.date] = set()
    for f in files:
        days |= set(ingest_file(f, w, Settings(), geo=geo, ip_key=KEY).dates)
    geo.close()
    rollups.build_days(w, days)
    return w


def exact_oracle(name: str) -> str:
    """The raw scan of sql/raw/<name>.sql with exact distinct clients (approx_count_distinct is
    DuckDB's own estimate): the truth the rollup answer is held to."""
    text = (SQL / "raw" / f"{name}.sql").read_text()
    return text.replace("approx_count_distinct(client_id)", "count(DISTINCT client_id)")


def within_sketch_error(estimate: int, exact: int) -> bool:
    """docs/rollups.md: exact below SKETCH_K distinct clients; above, within 3 standard errors."""
    if exact < rollups.SKETCH_K:
        return estimate == exact
    return abs(estimate - exact) <= 3 * exact / (rollups.SKETCH_K - 2) ** 0.5


def test_every_library_question_has_a_raw_twin_and_a_case() -> None:
    raw = {p.stem for p in (SQL / "raw").glob("*.sql")}
    reads_rollups = {p.stem for p in SQL.glob("*.sql") if "FROM rollup_" in p.read_text()}
    assert reads_rollups == raw
    assert {name for name, _ in CASES} == raw
    # The rest read no raw requests except the daily aggregate, which builds from them and says so.
    for p in SQL.glob("*.sql"):
        if p.stem not in raw and re.search(r"\bFROM requests\b", p.read_text()):
            assert "raw" in p.read_text().splitlines()[0], p.name


@pytest.mark.parametrize(("name", "params"), CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_rollup_answer_equals_raw_scan(wh: Warehouse, name: str, params: dict[str, object]) -> None:
    got = queries.run(wh.root, queries.sql_file(name), params)
    want = queries.run(wh.root, exact_oracle(name), params)
    assert not want.is_empty()
    if "clients" in want.columns:
        pairs = list(zip(got["clients"].to_list(), want["clients"].to_list(), strict=True))
        assert all(within_sketch_error(g, w) for g, w in pairs), pairs
        got, want = got.drop("clients"), want.drop("clients")
    assert_frame_equal(got, want)


def test_fixture_has_what_the_questions_break_down(wh: Warehouse) -> None:
    con = wh.connect(read_only=True)
    [(n_sources, n_asns, n_heavy)] = con.sql(
        "SELECT count(DISTINCT source), count(DISTINCT asn), "
        "(SELECT count(*) FROM rollup_client_net WHERE requests > 100) FROM rollup_place, rollup_asn"
    ).fetchall()
    con.close()
    assert (n_sources, n_asns > 20, n_heavy > 0) == (2, True, True)


def test_every_rollup_holds_every_request_once(wh: Warehouse) -> None:
    con = wh.connect(read_only=True)
    raw = con.sql(
        "SELECT date, count(*), sum(bytes) FROM requests GROUP BY 1 ORDER BY 1"
    ).fetchall()
    for name in rollups.NAMES:
        got = con.sql(f"SELECT date, sum(requests), sum(bytes) FROM {name} GROUP BY 1 ORDER BY 1")
        assert got.fetchall() == raw, name
    con.close()


def test_rollup_files_have_the_registered_schema(wh: Warehouse) -> None:
    for t in rollups.ROLLUPS:
        assert TABLES[t.name] is t
        for part in (wh.root / t.name).glob("date=*/part.parquet"):
            assert pl.read_parquet_schema(part) == dict(t.schema), part
    assert sorted(p.name for p in (wh.root / "rollup_place").iterdir()) == [
        f"date={d}" for d in DAYS
    ]


def _ids(n: int, salt: str) -> list[int]:
    """n distinct client_id-like values: keyed 64-bit hashes as signed int64."""
    return [
        int.from_bytes(
            hashlib.blake2b(f"{salt}{i}".encode(), digest_size=8).digest(), "big", signed=True
        )
        for i in range(n)
    ]


def _sketch_con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for stmt in rollups.macro_statements():
        con.execute(stmt)
    return con


def test_sketch_counts_exactly_below_k_and_within_its_error_above() -> None:
    con = _sketch_con()
    # Seven overlapping days: clients 0..59,999 on day 0, shifted by 10,000 a day (120,000 in all).
    ids = _ids(120_000, "c")
    days = pl.DataFrame(
        {"day": [d for d in range(7) for _ in range(60_000)],
         "client_id": [ids[d * 10_000 + i] for d in range(7) for i in range(60_000)]}
    )  # fmt: skip
    con.register("days", days)
    con.execute(
        "CREATE TABLE sketches AS "
        "SELECT day, sketch_clients(client_id) AS client_sketch FROM days GROUP BY day"
    )
    [(week,)] = con.sql("SELECT distinct_clients(client_sketch) FROM sketches").fetchall()
    assert within_sketch_error(week, 120_000) and week != 120_000
    per_day = (
        con.sql("SELECT sketch_estimate(client_sketch) AS n FROM sketches").pl()["n"].to_list()
    )
    assert all(within_sketch_error(n, 60_000) for n in per_day)
    # Below k the count is exact, over any number of days and duplicates.
    small = pl.DataFrame(
        {"day": [1, 1, 2, 2, 2], "client_id": [ids[0], ids[1], ids[1], ids[2], ids[2]]}
    )
    con.unregister("days")
    con.register("days", small)
    assert con.sql(
        "SELECT distinct_clients(s) FROM (SELECT sketch_clients(client_id) s FROM days GROUP BY day)"
    ).fetchall() == [(3,)]
    assert con.sql(
        "SELECT distinct_clients(s) FROM (SELECT NULL::BIGINT[] s WHERE false)"
    ).fetchall() == [(0,)]


def test_sketch_error_over_many_draws() -> None:
    """The relative error's spread over 40 independent populations matches 1/sqrt(k-2)."""
    con = _sketch_con()
    rows = [(draw, i) for draw in range(40) for i in _ids(20_000, f"draw{draw}-")]
    con.register("draws", pl.DataFrame(rows, schema=["draw", "client_id"], orient="row"))
    errors = (
        con.sql(
            "SELECT sketch_estimate(sketch_clients(client_id)) / 20000.0 - 1 AS e FROM draws GROUP BY draw"
        )
        .pl()["e"]
        .to_numpy()
    )
    rse = 1 / (rollups.SKETCH_K - 2) ** 0.5
    assert abs(errors.mean()) < rse and 0.5 * rse < errors.std() < 1.5 * rse


def _fastly_line(day: dt.date, ip: str, status: int, nbytes: int, state: str) -> str:
    rec = {
        "timestamp": f"{day}T12:00:00Z", "client_ip": ip, "request_method": "GET",
        "url": "/alpine/v3.22/main/x86_64/APKINDEX.tar.gz", "request_protocol": "HTTP/2",
        "response_status": status, "response_body_size": nbytes,
        "request_user_agent": "libfetch/2.0", "server_datacenter": "FRA", "response_state": state,
    }  # fmt: skip
    return json.dumps(rec) + "\n"


def test_late_file_makes_its_day_stale_until_rebuilt(tmp_path: Path) -> None:
    w = Warehouse(tmp_path / "wh")
    d1, d2 = dt.date(2026, 11, 16), dt.date(2026, 11, 17)
    (tmp_path / "a.log").write_text(
        _fastly_line(d1, "192.0.2.1", 200, 100, "HIT")
        + _fastly_line(d2, "192.0.2.2", 304, 0, "HIT")
    )
    r = ingest_file(tmp_path / "a.log", w, Settings(), ip_key=KEY)
    assert rollups.stale_days(w) == [d1, d2]
    assert [b.requests for b in rollups.build_days(w, r.dates)] == [1, 1]
    assert rollups.stale_days(w) == []

    # a late file with two more lines of the 17th: that day alone goes stale, then is replaced
    (tmp_path / "late.log").write_text(
        _fastly_line(d2, "192.0.2.3", 200, 1234, "MISS")
        + _fastly_line(d2, "192.0.2.2", 404, 10, "PASS")
    )
    ingest_file(tmp_path / "late.log", w, Settings(), ip_key=KEY)
    assert rollups.stale_days(w) == [d2]
    (built,) = rollups.build_days(w, rollups.stale_days(w))
    assert (built.day, built.requests, built.bytes) == (d2, 3, 1244)
    assert rollups.stale_days(w) == []
    headline = queries.run(
        w.root, queries.sql_file("report_headline"), {"start": str(d2), "end": str(d2)}
    )
    assert headline.row(0) == (3, 1244, 2, 1244)
    day = queries.run(
        w.root, queries.sql_file("traffic_by_day"), {"start": str(d1), "end": str(d2)}
    )
    assert day.select("date", "requests", "clients", "errors").rows() == [
        (d1, 1, 1, 0),
        (d2, 3, 2, 1),
    ]


def test_duckdb_shell_answers_from_the_rollups(wh: Warehouse) -> None:
    """The README's example, in the shell maintainers install (duckdb-cli, an older DuckDB)."""
    query = (
        "SELECT country, sum(requests) AS requests, distinct_clients(client_sketch) AS clients "
        "FROM rollup_place WHERE date BETWEEN DATE '2026-10-30' AND DATE '2026-11-02' "
        "GROUP BY country ORDER BY requests DESC LIMIT 3"
    )
    out = subprocess.run(
        [str(BIN / "duckdb"), "-readonly", "-csv", str(wh.db_path), "-c", query],
        capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": str(wh.root)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    got = [tuple(r) for r in csv.reader(out.stdout.splitlines()[1:])]
    want = queries.run(wh.root, query).rows()
    assert len(got) == 3
    assert got == [tuple(str(v) for v in r) for r in want]
