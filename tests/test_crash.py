"""Killing an ingest at any point and running it again leaves exactly what a clean run leaves."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from pipeline.generate import generate
from pipeline.warehouse import Warehouse

DLCDN = str(Path(sys.executable).parent / "dlcdn")


def _env(wh: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("DLCDN_")}
    return e | {"DLCDN_WAREHOUSE": str(wh), "DLCDN_IP_KEY": "crash-test-key-0123456789"}


def _tables(wh: Path) -> dict[str, pl.DataFrame]:
    """Every visible table as sorted frames (the manifest without its timing columns)."""
    con = Warehouse(wh).connect(read_only=True)
    try:
        out = {
            "requests": con.sql("SELECT * FROM requests").pl().sort("file_id", "line_no"),
            "rejects": con.sql("SELECT * FROM rejects").pl().sort("file_id", "line_no"),
            "ingested_files": con.sql("SELECT * EXCLUDE (ingested_at) FROM ingested_files")
            .pl()
            .sort("file_id"),
        }
    finally:
        con.close()
    return out


def _files(wh: Path) -> list[str]:
    return sorted(
        str(p.relative_to(wh))
        for p in wh.rglob("*.parquet")
        if ".staging" not in p.parts and p.name != "branches.parquet"
    )


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("landing")
    generate(out, dt.date(2026, 11, 16), 2, 150_000, fmt="combined", seed=5)
    (out / "SYNTHETIC.txt").unlink()
    return out


@pytest.fixture(scope="module")
def clean(landing: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    wh = tmp_path_factory.mktemp("clean") / "wh"
    subprocess.run([DLCDN, "ingest", str(landing)], env=_env(wh), check=True, capture_output=True)
    return wh


@pytest.mark.parametrize("kill_after", [0.3, 0.8, 1.3, 1.8, 2.5, 3.5])
def test_sigkill_then_rerun_equals_a_clean_run(
    kill_after: float, landing: Path, clean: Path, tmp_path: Path
) -> None:
    wh = tmp_path / "wh"
    proc = subprocess.Popen(
        [DLCDN, "ingest", str(landing)],
        env=_env(wh),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # whatever the kill left, readers see only whole files that the manifest names
    if (wh / "warehouse.duckdb").exists():
        visible = _tables(wh)
        named = set(visible["ingested_files"]["file_id"].to_list())
        assert set(visible["requests"]["file_id"].unique().to_list()) <= named
    rerun = subprocess.run(
        [DLCDN, "ingest", str(landing)], env=_env(wh), capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    assert _files(wh) == _files(clean)
    mine, theirs = _tables(wh), _tables(clean)
    for name in theirs:
        assert mine[name].equals(theirs[name]), name
    assert not any((wh / ".staging").iterdir())
