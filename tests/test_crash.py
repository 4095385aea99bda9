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

from pipeline.synthetic.generate import generate
from pipeline.warehouse.store import Warehouse

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
        if ".staging" not in p.parts and p.parent != wh  # top level: reference tables
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


# 20 kill points from interpreter start-up to the last commit (a clean run takes about 3 s)
@pytest.mark.parametrize("kill_after", [round(0.15 * i + 0.2, 2) for i in range(20)])
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
    for rel in _files(clean):
        if not rel.startswith("ingested_files/"):  # the manifest records when, so it differs there
            assert (wh / rel).read_bytes() == (clean / rel).read_bytes(), rel
    mine, theirs = _tables(wh), _tables(clean)
    for name in theirs:
        assert mine[name].equals(theirs[name]), name
    assert not any((wh / ".staging").iterdir())


def test_two_ingests_of_the_same_file_at_once_give_one_result(
    landing: Path, clean: Path, tmp_path: Path
) -> None:
    wh = tmp_path / "wh"
    procs = [
        subprocess.Popen(
            [DLCDN, "ingest", str(landing)],
            env=_env(wh),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode() if p.stderr else ""
    assert _files(wh) == _files(clean)
    mine, theirs = _tables(wh), _tables(clean)
    for name in theirs:
        assert mine[name].equals(theirs[name]), name
