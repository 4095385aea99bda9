"""`dlcdn placement`, `dlcdn budget` and the weekly decision assets on three generated weeks."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from assets.defs.decisions import egress_budget, mirror_placement
from assets.resources import DlcdnResource
from pipeline.decisions import budget as budget_mod
from pipeline.decisions import placement as placement_mod
from pipeline.decisions import tables as decisions
from pipeline.geo.geoip import GeoIP
from pipeline.ingest.run import ingest_file
from pipeline.report import build as report
from pipeline.settings import Settings
from pipeline.synthetic.generate import generate
from pipeline.warehouse import queries, rollups
from pipeline.warehouse.store import Warehouse

DLCDN = str(Path(sys.executable).parent / "dlcdn")
REPO = Path(__file__).resolve().parents[1]
SITES = REPO / "pipeline" / "data" / "sites.yaml"
START = dt.date(2026, 10, 26)  # a Monday; three ISO weeks follow


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("decisions")
    files = generate(tmp / "landing", START, 21, 1500, fmt="fastly", seed=11)
    w = Warehouse(tmp / "wh")
    geo = GeoIP.open()  # the embedded default (make setup installs it): demand needs places
    assert geo.describe(), "no GeoIP database: run make setup"
    days = set()
    for f in files:
        days |= set(ingest_file(f, w, Settings(), geo=geo, ip_key=b"k" * 32).dates)
    geo.close()
    rollups.build_days(w, days)  # what `dlcdn ingest` does after its files
    return tmp / "wh"


def _run(wh: Path, *args: str, ok: bool = True, **extra_env: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLCDN_")}
    env |= {"DLCDN_WAREHOUSE": str(wh), "DLCDN_IP_KEY": "decisions-key-0123456789", **extra_env}
    out = subprocess.run([DLCDN, *args], env=env, capture_output=True, text=True, timeout=300)
    assert (out.returncode == 0) == ok, out.stderr[-2000:]
    return out.stdout + out.stderr


def test_placement_prints_a_ranked_table(wh: Path) -> None:
    out = _run(wh, "placement", "--k", "3")
    rows = [
        line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| k")
    ]
    assert [r.split("|")[1].strip() for r in rows] == ["1", "2", "3"]
    latencies = [float(r.split("|")[4]) for r in rows]
    assert latencies == sorted(latencies, reverse=True)  # more sites, lower mean latency
    assert "origin demand" in _run(wh, "placement", "--k", "2", "--demand", "origin")


def test_placement_within_budget_and_frontier(wh: Path) -> None:
    # rule: --budget-eur names the best set it can pay for and prints the frontier under it
    out = _run(wh, "placement", "--k", "2", "--budget-eur", "3000")
    assert "Best within 3,000 EUR/month" in out and "Latency versus cost" in out
    frontier = [
        line for line in out.split("Latency versus cost")[1].splitlines() if line.startswith("| ")
    ]
    rows = [[c.strip() for c in r.split("|")[1:-1]] for r in frontier]
    rows = [r for r in rows if r[0].isdigit()]
    assert len(rows) >= 2
    # each set's cost is the sum of its paid sites' cost_month, read from sites.yaml here
    price = {e["name"]: e["cost_month"] for e in yaml.safe_load(SITES.read_text())["sites"]}
    for r in rows:
        paid = [n.strip() for n in r[4].split(",") if n.strip()]
        assert int(r[0]) == round(sum(price[n] for n in paid)) and all(price[n] > 0 for n in paid)
    costs = [int(r[0]) for r in rows]
    assert costs == sorted(costs)
    # and the named best set is the frontier's fastest one within the budget
    within = [r for r in rows if int(r[0]) <= 3000]
    best = min(within, key=lambda r: float(r[1]))
    assert f"{float(best[1]):.1f} ms" in out.split("Best within 3,000 EUR/month")[1].splitlines()[0]
    bad = _run(wh, "placement", "--budget-eur", "-5", ok=False)
    assert "Traceback" not in bad


def test_budget_prints_edge_and_origin_with_backtest(wh: Path) -> None:
    out = _run(wh, "budget", "--budget-tb", "0.01")
    assert "EDGE EGRESS" in out and "ORIGIN EGRESS" in out
    assert "MAPE" in out and "Changes found:" in out and "Outlier days set aside:" in out
    assert "OVER" in out  # 10 GB a month is far below this traffic
    # a price table from the setting, and a bad one named in a one-line error
    assert _run(wh, "budget", DLCDN_PRICE_TABLE="inf:1000") != out
    bad = _run(wh, "budget", ok=False, DLCDN_PRICE_TABLE="cheap")
    assert "DLCDN_PRICE_TABLE" in bad and "Traceback" not in bad


def test_weekly_decision_assets(wh: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    week = (START + dt.timedelta(days=14)).isoformat()
    result = dg.materialize(
        [mirror_placement, egress_budget],
        partition_key=week,
        resources={"dlcdn": DlcdnResource(warehouse=str(wh), landing=str(tmp_path))},
        instance=dg.DagsterInstance.get(),
    )
    assert result.success
    (placement,) = result.asset_materializations_for_node("mirror_placement")
    (budget,) = result.asset_materializations_for_node("egress_budget")
    # the placement file is place() on the 28 days of client demand up to the week's Sunday
    end = START + dt.timedelta(days=20)
    begin = end - dt.timedelta(days=27)
    demand = queries.run(
        wh, queries.sql_file("placement_demand"), {"start": str(begin), "end": str(end)}
    )
    steps = placement_mod.place(
        demand.select("latitude", "longitude", "bytes"),
        placement_mod.load_sites(),
        5,
        tb_per_month_scale=(365.25 / 12) / 28,
    )
    written = pl.read_parquet(wh / "decisions" / f"week={week}" / "placement.parquet")
    assert written["k"].to_list() == [s.k for s in steps] == [1, 2, 3, 4, 5]
    assert written["sites"].to_list() == [", ".join(s.sites) for s in steps]
    assert written["mean_latency_ms"].to_list() == [round(s.mean_latency_ms, 1) for s in steps]
    assert placement.metadata["best_sites"].value == ", ".join(steps[-1].sites)
    assert placement.metadata["demand_points"].value == demand.height
    frontier = pl.read_parquet(wh / "decisions" / f"week={week}" / "frontier.parquet")
    assert placement.metadata["frontier_points"].value == frontier.height >= 2
    # the budget's months: actual bytes are the requests' bytes summed per month, by SQL here
    months = queries.run(
        wh,
        "SELECT date_trunc('month', date)::DATE AS month, sum(bytes)::DOUBLE AS b "
        "FROM requests GROUP BY ALL ORDER BY month",
    )
    monthly = pl.read_parquet(wh / "decisions" / f"week={week}" / "budget_monthly.parquet")
    observed = monthly.filter(pl.col("actual_bytes").is_not_null())
    assert observed.select("month", "actual_bytes").rows() == months.rows()
    mape = budget.metadata["backtest_mape_monthly"].value
    again = decisions.budget_table(wh, today=dt.date.fromisoformat(week) + dt.timedelta(days=7))
    assert again.edge is not None and mape == round(again.edge.backtest_mape_monthly, 4)


def test_the_weekly_decision_is_reused_until_its_demand_changes(wh: Path, tmp_path: Path) -> None:
    # rule: the report shows the decision the weekly asset stored while its inputs are the same,
    # and a late file that changes the demand means a fresh solve, never a stale answer
    copy = tmp_path / "wh"
    shutil.copytree(wh, copy, ignore=shutil.ignore_patterns("decisions"))
    monday = START + dt.timedelta(days=14)
    first = decisions.weekly_placement(copy, monday)
    assert not first.reused and first.placement["k"].to_list() == [1, 2, 3, 4, 5]
    again = decisions.weekly_placement(copy, monday)
    assert again.reused and again.key == first.key
    assert again.placement.equals(first.placement) and again.frontier.equals(first.frontier)

    stored = decisions.decision_dir(copy, monday) / "frontier.parquet"
    marked = first.frontier.with_columns(pl.lit("stored-by-the-asset").alias("change"))
    marked.write_parquet(stored)
    week = monday.strftime("%G-W%V")
    shown = report.build(copy, week).attachments[f"{week}-placement-frontier.csv"].decode()
    assert "stored-by-the-asset" in shown  # read back, not solved again

    late = generate(tmp_path / "late", monday + dt.timedelta(days=2), 1, 400, fmt="fastly", seed=99)
    w = Warehouse(copy)
    geo = GeoIP.open()
    days = set()
    for f in late:
        days |= set(ingest_file(f, w, Settings(), geo=geo, ip_key=b"k" * 32).dates)
    geo.close()
    rollups.build_days(w, days)
    fresh = decisions.weekly_placement(copy, monday)
    assert not fresh.reused and fresh.key["inputs_sha256"] != first.key["inputs_sha256"]
    assert "stored-by-the-asset" not in fresh.frontier["change"].to_list()
    assert decisions.weekly_placement(copy, monday).reused  # the new decision is stored


def test_costs_are_price_times_terabytes(wh: Path) -> None:
    # a flat 1,000 EUR/TB: every month costs 1,000 x its total TB (TB = 10^12 bytes)
    flat = decisions.budget_table(wh, 0.01, price_table="inf:1000")
    assert flat.edge is not None and flat.edge.monthly.height >= 6
    for r in flat.edge.monthly.iter_rows(named=True):
        assert r["cost_eur"] == pytest.approx(1000 * r["forecast_bytes"] / 1e12, rel=1e-12)
    # graduated tiers, each rate for its own slice: 2 TB = 1 x 80 + 1 x 60; 120 TB = 10 x 80 +
    # 40 x 60 + 70 x 45; past the last finite tier its rate goes on
    tiers = budget_mod.parse_price_table("10:80,50:60,150:45")
    assert budget_mod.cost_eur(0.5, tiers) == 40.0
    assert budget_mod.cost_eur(10, tiers) == 800.0
    assert budget_mod.cost_eur(120, tiers) == 800 + 2400 + 3150
    assert budget_mod.cost_eur(200, tiers) == 800 + 2400 + 4500 + 50 * 45
