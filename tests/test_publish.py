"""The public dataset (`dlcdn publish`): a valid Frictionless package, every row recounted from
the warehouse at k or more distinct clients, totals that reconcile, nothing identifying, clear
errors, and the weekly Dagster asset with its blocking validation check.

The fixture: two generated ISO weeks (2026-W45 and W46) of Fastly logs plus a mirror log, and one
day of the next week (to show an unfinished week is left out), placed by the embedded GeoIP
database. The oracle in this file reads raw `requests` with its own SQL, not sql/publish/.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline.geo.geoip import GeoIP
from pipeline.ingest.run import ingest_file
from pipeline.publish import package
from pipeline.publish.package import NEVER_PUBLISHED, PublishError, publish
from pipeline.publish.tables import BY_NAME, OTHER, TABLES, TOP_PACKAGES, UNKNOWN
from pipeline.settings import Settings
from pipeline.synthetic.generate import generate
from pipeline.warehouse import queries
from pipeline.warehouse.store import Warehouse

DLCDN = str(Path(sys.executable).parent / "dlcdn")
START = dt.date(2026, 11, 2)  # Monday of 2026-W45
END = dt.date(2026, 11, 15)  # Sunday of 2026-W46
TODAY = dt.date(2026, 11, 18)  # a Wednesday of W47: W45 and W46 have ended, W47 has not
KEY = b"p" * 32

# The oracle: per table, its period, dimension expressions and filter over raw requests.
WEEK = "strftime(date, '%G-W%V')"
MONDAY = "CAST(date_trunc('week', date) AS DATE)"
STATUS = f"branch_status(branch_resolved, {MONDAY})"
ORACLE: dict[str, tuple[str, dict[str, str], str, str]] = {
    "daily_totals": ("date", {}, "true", "count(*)"),
    "by_place": (WEEK, {"continent": "continent", "country": "country"}, "true", "count(*)"),
    "by_arch": (WEEK, {"arch": "arch"}, "true", "count(*)"),
    "by_branch": (WEEK, {"branch": "branch_resolved", "status": STATUS}, "true", "count(*)"),
    "by_repo": (WEEK, {"repo": "repo"}, "true", "count(*)"),
    "by_file_kind": (WEEK, {"file_kind": "file_kind"}, "true", "count(*)"),
    "by_client_kind": (WEEK, {"client_kind": "client_kind"}, "true", "count(*)"),
    "top_packages": (WEEK, {"arch": "arch", "package": "package"}, "file_kind = 'package'", "count(*)"),
    "apkindex_checks": (
        WEEK, {"branch": "branch_resolved", "status": STATUS},
        "file_kind = 'apkindex' AND status IN (200, 304)", "count(*)",
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    tmp = tmp_path_factory.mktemp("publish")
    days = (END - START).days + 2
    files = generate(tmp / "fastly", START, days, 2500, fmt="fastly", seed=11)
    files += generate(tmp / "mirror", START, days, 300, fmt="combined", seed=12)
    w = Warehouse(tmp / "wh")
    geo = GeoIP.open()
    assert geo.describe(), "no GeoIP database: run make setup"
    for f in files:
        ingest_file(f, w, Settings(), geo=geo, ip_key=KEY)
    geo.close()
    return w


@pytest.fixture(scope="module")
def published(wh: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> package.Published:
    out = tmp_path_factory.mktemp("pkg") / "alpine"
    with GeoIP.open() as geo:
        described = geo.describe()
    return publish(wh, out, k=10, geoip=described, today=TODAY)


def raw_cells(wh: Warehouse, name: str, start: dt.date, end: dt.date) -> pl.DataFrame:
    """One row per period, cell and client from raw requests, by this file's own SQL."""
    period, dims, where, measure = ORACLE[name]
    t = BY_NAME[name]
    cols = "".join(f", coalesce({e}, '{UNKNOWN}') AS {d}" for d, e in dims.items())
    text = (
        f"SELECT {period} AS {t.period}{cols}, client_id, {measure} AS m, "
        "CAST(sum(bytes) AS BIGINT) AS bytes FROM requests "
        f"WHERE date BETWEEN $start AND $end AND {where} GROUP BY ALL"
    )
    return queries.run(wh.root, text, {"start": start, "end": end})


def recount(raw: pl.DataFrame, rows: pl.DataFrame, name: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each raw cell goes to the published row that holds it: its own row, else the first of
    the table's "other" rows that exists for it, else nowhere (dropped). Returns the recount per
    published row (requests, bytes, exact distinct clients) and the dropped raw rows."""
    t = BY_NAME[name]
    home = {c: f"home_{c}" for c in t.keys}
    published = rows.select(t.keys).rename(home)
    left, homed = raw.select(t.keys).unique(), []
    for fold in [tuple(t.dims), *t.folds]:
        candidate = left.with_columns(
            (pl.col(c) if c == t.period or c in fold else pl.lit(OTHER)).alias(home[c])
            for c in t.keys
        )
        hit = candidate.join(published, on=list(home.values()), how="semi")
        homed.append(hit)
        left = left.join(hit, on=t.keys, how="anti")
    counted = (
        raw.join(pl.concat(homed), on=t.keys)
        .group_by(list(home.values()))
        .agg(pl.col("m").sum(), pl.col("bytes").sum(), pl.col("client_id").n_unique())
        .rename(
            {v: k for k, v in home.items()} | {"m": next(iter(t.measures)), "client_id": "clients"}
        )
    )
    return counted, raw.join(left, on=t.keys, how="semi")


@pytest.mark.parametrize("name", [t.name for t in TABLES])
def test_every_published_row_is_recounted_from_the_warehouse_at_k_or_more(
    wh: Warehouse, published: package.Published, name: str
) -> None:
    rows = next(t.rows for t in published.tables if t.table.name == name)
    assert not rows.is_empty()
    counted, dropped = recount(raw_cells(wh, name, START, END), rows, name)
    # every published row holds exactly the raw rows that belong to it, with >= k clients
    want = rows.cast(
        {c: pl.Int64 for c in ("requests", "index_checks", "bytes", "clients") if c in rows.columns}
    )
    got = counted.select(rows.columns).cast(dict(want.schema))
    assert_frame_equal(got.sort(BY_NAME[name].keys), want.sort(BY_NAME[name].keys))
    assert rows["clients"].min() >= published.k
    # what no row holds is fewer than k clients per period (else it would be an other row)
    t = BY_NAME[name]
    if not dropped.is_empty():
        per_period = dropped.group_by(t.period).agg(pl.col("client_id").n_unique())
        if () in t.folds or not t.folds:
            assert per_period["client_id"].max() < published.k


def test_the_fixture_exercises_folds_and_the_top(published: package.Published) -> None:
    by = {t.table.name: t for t in published.tables}
    place = by["by_place"].rows
    # a continent's other row and a week's other/other row or dropped rows: both fold levels ran
    assert place.filter((pl.col("continent") != OTHER) & (pl.col("country") == OTHER)).height
    assert by["by_place"].accounting["rows_folded"].sum() > 0
    top = by["top_packages"].rows.filter(pl.col("package") != OTHER)
    assert top.group_by("week", "arch").len()["len"].max() <= TOP_PACKAGES
    assert by["top_packages"].accounting["rows_folded"].sum() > 0


@pytest.mark.parametrize("k", [10, 60])
def test_published_plus_dropped_is_the_warehouse_total(
    wh: Warehouse, tmp_path: Path, k: int
) -> None:
    p = publish(wh, tmp_path / "out", START, END, k=k, today=TODAY)
    dropped_somewhere = 0
    for t in p.tables:
        name, measure = t.table.name, next(iter(t.table.measures))
        _, _, where, _ = ORACLE[name]
        truth = queries.run(
            wh.root,
            f"SELECT {ORACLE[name][0]} AS period, count(*) AS requests, "
            f"CAST(sum(bytes) AS BIGINT) AS bytes FROM requests "
            f"WHERE date BETWEEN $start AND $end AND {where} GROUP BY ALL",
            {"start": START, "end": END},
        ).with_columns(pl.col("period").cast(pl.String))
        shown = t.rows.group_by(pl.col(t.table.period).cast(pl.String).alias("period")).agg(
            pl.col(measure).sum().alias("published_requests"),
            pl.col("bytes").sum().alias("published_bytes"),
        )
        acc = t.accounting.join(shown, on="period", how="left").join(
            truth, on="period", how="full", coalesce=True
        )
        assert acc["table"].null_count() == 0, f"{name}: a period of the warehouse is missing"
        assert (
            acc["published_requests"].fill_null(0) + acc["requests_dropped"] == acc["requests"]
        ).all(), name
        assert (acc["published_bytes"].fill_null(0) + acc["bytes_dropped"] == acc["bytes"]).all(), (
            name
        )
        assert (acc["requests_total"] == acc["requests"]).all() and (
            acc["bytes_total"] == acc["bytes"]
        ).all()
        dropped_somewhere += int(acc["rows_dropped"].sum())
    if k == 60:
        assert dropped_somewhere > 0  # the high k really drops rows, and they are accounted for


def test_the_package_validates_with_frictionless(published: package.Published) -> None:
    report = package.validate(published.out)
    assert report.valid, package.errors(report)
    descriptor = json.loads((published.out / "datapackage.json").read_text())
    names = [r["name"] for r in descriptor["resources"]]
    tables = [t.name for t in TABLES] + ["suppression"]
    assert names == [n + s for n in tables for s in ("", "-parquet")]
    assert len(report.tasks) == len(names)  # every resource was read and checked
    assert descriptor["licenses"][0]["name"] == "CC-BY-4.0" and descriptor["sources"]
    assert descriptor["k_anonymity"]["k"] == 10
    for r in descriptor["resources"]:
        assert r["schema"]["primaryKey"] and all(
            f.get("description") for f in r["schema"]["fields"]
        )
    # CSV and Parquet hold the same rows
    for t in published.tables:
        csv = pl.read_csv(published.out / "data" / f"{t.table.name}.csv", try_parse_dates=True)
        parquet = pl.read_parquet(published.out / "data" / f"{t.table.name}.parquet")
        assert_frame_equal(csv, parquet, check_dtypes=False)
        assert_frame_equal(parquet, t.rows)


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        ("duplicate_row", "primary-key"),
        ("below_k", "constraint-error"),
    ],
)
def test_a_damaged_package_fails_validation(
    published: package.Published, tmp_path: Path, damage: str, error: str
) -> None:
    copy = tmp_path / "pkg"
    shutil.copytree(published.out, copy)
    csv = copy / "data" / "by_arch.csv"
    lines = csv.read_text().splitlines()
    if damage == "duplicate_row":
        lines.append(lines[1])
    else:
        head, row = lines[0].split(","), lines[1].split(",")
        row[head.index("clients")] = str(published.k - 1)
        lines[1] = ",".join(row)
    csv.write_text("\n".join(lines) + "\n")
    descriptor = json.loads((copy / "datapackage.json").read_text())
    for r in descriptor["resources"]:  # the size and hash would fail first otherwise
        if r["path"] == "data/by_arch.csv":
            del r["bytes"], r["hash"]
    (copy / "datapackage.json").write_text(json.dumps(descriptor))
    report = package.validate(copy)
    assert not report.valid
    assert any(error in line for line in package.errors(report)), package.errors(report)


def test_nothing_identifying_is_published(wh: Warehouse, published: package.Published) -> None:
    descriptor = json.loads((published.out / "datapackage.json").read_text())
    fields = {f["name"] for r in descriptor["resources"] for f in r["schema"]["fields"]}
    assert not fields & set(NEVER_PUBLISHED)
    secrets = queries.run(
        wh.root,
        "SELECT DISTINCT CAST(client_id AS VARCHAR) AS v FROM requests UNION "
        "SELECT DISTINCT client_net FROM requests UNION SELECT DISTINCT user_agent FROM requests "
        "UNION SELECT DISTINCT CAST(latitude AS VARCHAR) FROM requests",
    )["v"].drop_nulls()
    cells = set()
    for f in (published.out / "data").glob("*.csv"):
        cells |= {c for line in f.read_text().splitlines() for c in line.split(",")}
    assert len(secrets) > 100 and not cells & set(secrets.to_list())


def test_the_data_sheet_says_what_the_data_is(published: package.Published) -> None:
    sheet = (published.out / "README.md").read_text()
    for needed in (
        "k = 10",
        "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0",  # the licence's attribution
        "DBIP-City-Lite, built 2023-04-01",  # the GeoIP source and its date
        "Creative Commons Attribution 4.0",
        "Caching proxies",
        "CI loops",
        "A unique client",
        "A request",
        "published + dropped = total",
    ):
        assert needed in sheet, needed
    for t in TABLES:
        assert f"### `{t.name}`" in sheet


def test_weeks_are_whole_and_ended(wh: Warehouse) -> None:
    # the default range: from the first week with data to the last ended one (W47 has one day)
    assert package.week_range(wh, None, None, today=TODAY) == (START, END)
    # days inside weeks widen to them
    assert package.week_range(wh, dt.date(2026, 11, 4), dt.date(2026, 11, 10), today=TODAY) == (
        START,
        END,
    )
    with pytest.raises(PublishError, match="2026-W47 has not ended"):
        package.week_range(wh, None, dt.date(2026, 11, 16), today=TODAY)
    with pytest.raises(PublishError, match="no requests"):
        package.week_range(wh, dt.date(2025, 1, 1), dt.date(2025, 1, 31), today=TODAY)
    # on the Monday of the first week with data, no week with data has ended yet
    with pytest.raises(PublishError, match="no ended ISO week with data"):
        package.week_range(wh, None, None, today=START)
    # on the next Monday, W47 has ended and is the default's last week
    later = dt.date(2026, 11, 23)
    assert package.week_range(wh, None, None, today=later) == (START, dt.date(2026, 11, 22))


@pytest.fixture
def env(wh: Warehouse) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("DLCDN_")}
    return e | {"DLCDN_WAREHOUSE": str(wh.root), "DLCDN_IP_KEY": "x" * 32, "NO_COLOR": "1"}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DLCDN, "publish", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_cli_writes_reports_and_replaces_only_with_force(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "pkg"
    r = run(env, "--out", str(out), "--start", "2026-11-02", "--end", "2026-11-15", "--k", "12")
    assert r.returncode == 0, r.stderr
    assert "by_place:" in r.stderr and "validated and written" in r.stderr  # progress
    assert "2026-11-02 .. 2026-11-15 (ISO weeks 2026-W45 .. 2026-W46), k = 12" in r.stdout
    assert f"package: {out / 'datapackage.json'}" in r.stdout
    assert package.package_k(out) == 12 and package.validate(out).valid
    again = run(env, "--out", str(out), "--end", "2026-11-15")
    assert again.returncode == 2 and again.stderr.strip().count("\n") == 0
    assert "is not empty: give --force" in again.stderr
    forced = run(env, "--out", str(out), "--end", "2026-11-08", "--force")
    assert forced.returncode == 0, forced.stderr
    assert json.loads((out / "datapackage.json").read_text())["temporal"]["end"] == "2026-11-08"
    assert not list(tmp_path.glob(".pkg.*"))  # no temporary or old folder left beside it


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--k", "1"], "1 is not in the range x>=2"),
        (["--start", "2025-01-06", "--end", "2025-01-12"], "no requests in the warehouse"),
        (["--end", "2099-01-01"], "has not ended"),
        (["--start", "2026-11-16", "--end", "2026-11-15"], "is after the end"),
    ],
)
def test_cli_errors_are_one_line(
    env: dict[str, str], tmp_path: Path, args: list[str], message: str
) -> None:
    r = run(env, "--out", str(tmp_path / "pkg"), *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not (tmp_path / "pkg").exists()


def test_force_never_replaces_a_folder_that_is_not_a_package(
    env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    r = run(env, "--out", str(tmp_path), "--force")
    assert r.returncode == 2 and "holds no datapackage.json" in r.stderr
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_weekly_asset_writes_the_week_and_its_check_validates(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assets.defs.publish import public_dataset, public_dataset_valid
    from assets.resources import DlcdnResource

    monkeypatch.setenv("DLCDN_PUBLISH_K", "15")
    monkeypatch.setenv("DLCDN_IP_KEY", "x" * 32)
    result = dg.materialize(
        [public_dataset, public_dataset_valid],
        partition_key="2026-11-09",
        resources={"dlcdn": DlcdnResource(warehouse=str(wh.root))},
    )
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.check_name == "public_dataset_valid"
    out = wh.root / "public" / "2026-W46"
    assert package.package_k(out) == 15
    daily = pl.read_csv(out / "data" / "daily_totals.csv", try_parse_dates=True)
    assert daily["date"].to_list() == [
        dt.date(2026, 11, 9) + dt.timedelta(days=i) for i in range(7)
    ]
    [mat] = result.get_asset_materialization_events()
    meta = mat.materialization.metadata
    assert meta["k"].value == 15 and meta["path"].value == str(out)


def test_the_weekly_job_publishes_the_week_behind_its_check() -> None:
    from assets.definitions import defs

    job = defs.resolve_job_def("weekly_job").asset_layer
    assert "public_dataset" in {k.to_user_string() for k in job.executable_asset_keys}
    assert "public_dataset_valid" in {c.name for c in job.asset_graph.asset_check_keys}
