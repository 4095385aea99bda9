"""`dlcdn placement`, `dlcdn budget` and the weekly decision assets on three generated weeks."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from assets.decisions import egress_budget, mirror_placement
from assets.resources import DlcdnResource
from pipeline.geo.geoip import GeoIP
from pipeline.ingest.run import ingest_file
from pipeline.settings import Settings
from pipeline.synthetic.generate import generate
from pipeline.warehouse import rollups
from pipeline.warehouse.store import Warehouse

DLCDN = str(Path(sys.executable).parent / "dlcdn")
REPO = Path(__file__).resolve().parents[1]
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


def test_budget_prints_edge_and_origin_with_backtest(wh: Path) -> None:
    out = _run(wh, "budget", "--budget-tb", "0.01")
    assert "EDGE EGRESS" in out and "ORIGIN EGRESS" in out
    assert "MAPE" in out
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
    assert placement.metadata["best_sites"].value
    assert 0 <= budget.metadata["backtest_mape_monthly"].value < 1
    assert (wh / "decisions" / f"week={week}" / "placement.parquet").exists()
