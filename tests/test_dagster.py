"""The Dagster layer on a real instance in a temp DAGSTER_HOME: definitions, sensor ticks, runs,
backfill from the command line, and the web server started and stopped for real."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from netutil import free_port

from assets.definitions import defs
from assets.defs.ingest import requests as requests_asset
from assets.defs.traffic import daily_traffic
from assets.demo import run_requested, tick
from assets.resources import DlcdnResource
from pipeline import dates
from pipeline.warehouse import rollups

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The clock the sensor reads, pinned to a Wednesday: "yesterday" is in the same ISO week, so the
# test asks for the same runs on any day it is run (the late file covers a closed week)
TODAY = dt.date(2026, 11, 18)


def log_lines(day: dt.date, n: int, ip: str = "198.51.100.7", start: int = 0) -> bytes:
    return b"".join(
        f"{ip} - - [{day:%d/%b/%Y}:10:{i // 60 % 60:02d}:{i % 60:02d} +0000] "
        f'"GET /alpine/v3.22/main/x86_64/p{i}-1.0-r0.apk HTTP/1.1" 200 {i} "-" "libfetch/2.0"\n'.encode()
        for i in range(start, start + n)
    )


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DLCDN_IP_KEY", "dagster-test-key-0123456789")
    monkeypatch.setattr(dates, "today_utc", lambda: TODAY)
    landing = tmp_path / "landing"
    landing.mkdir()
    instance = dg.DagsterInstance.get()
    dlcdn = DlcdnResource(warehouse=str(tmp_path / "wh"), landing=str(landing))
    yield instance, dlcdn, landing
    instance.dispose()


def test_definitions_hold_what_users_rely_on() -> None:
    assert {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()} >= {
        "requests",
        "daily_traffic",
        "rollups",
        "weekly_traffic",
    }
    daily_job = defs.resolve_job_def("daily_job").asset_layer
    assert {k.to_user_string() for k in daily_job.executable_asset_keys} == {
        "daily_traffic",
        "rollups",
    }
    assert {c.name for c in daily_job.asset_graph.asset_check_keys} >= {"rollups_match_requests"}
    assert defs.resolve_schedule_def("weekly_schedule").cron_schedule == "0 6 * * 1"
    assert defs.resolve_schedule_def("weekly_schedule").execution_timezone in (None, "UTC")
    assert defs.resolve_schedule_def("daily_schedule").cron_schedule == "30 1 * * *"
    assert {j.name for j in defs.resolve_sensor_def("landing_sensor").jobs} == {
        "ingest_job",
        "daily_job",
        "weekly_job",
    }
    for job in ("ingest_job", "daily_job", "weekly_job"):
        assert defs.resolve_job_def(job) is not None
    weekly = defs.resolve_assets_def("weekly_traffic").partitions_def
    assert weekly is not None and weekly.get_partition_keys()[0] == "2024-12-30"  # a Monday
    assert dt.date.fromisoformat(weekly.get_partition_keys()[-1]).weekday() == 0


def test_sensor_new_unchanged_duplicate_grown_and_late_files(env) -> None:  # type: ignore[no-untyped-def]
    instance, dlcdn, landing = env
    today = TODAY
    day = today - dt.timedelta(days=1)  # Tuesday 2026-11-17, in this (open) ISO week
    (landing / "a.log").write_bytes(log_lines(day, 50))

    # a new file: one ingest run keyed by its fingerprint, and its partition added
    first = tick(instance, dlcdn, None)
    (req,) = first.run_requests
    assert (req.job_name, req.partition_key) == ("ingest_job", "a.log")
    assert req.run_key.startswith("ingest:")
    assert "a.log" in instance.get_dynamic_partitions("landing_files")
    assert all(r.success for r in run_requested(instance, dlcdn, [req], print))

    # the next tick: nothing new to ingest, and the day the file touched is re-aggregated
    second = tick(instance, dlcdn, first.cursor)
    assert [(r.job_name, r.partition_key) for r in second.run_requests] == [
        ("daily_job", "2026-11-17")
    ]
    assert all(r.success for r in run_requested(instance, dlcdn, list(second.run_requests), print))
    assert tick(instance, dlcdn, second.cursor).run_requests == []
    # that daily run built the day's rollups
    wh = dlcdn.open_warehouse()
    assert rollups.stale_days(wh) == [] and rollups.mismatches(wh, day) == []
    # a file dated today: ingested now, aggregated by tomorrow's schedule (the daily partition
    # does not exist before the day ends), so the sensor asks for no daily run of today
    (landing / "today.log").write_bytes(log_lines(today, 3, ip="203.0.113.40"))
    t1 = tick(instance, dlcdn, second.cursor)
    (today_req,) = t1.run_requests
    assert (today_req.job_name, today_req.partition_key) == ("ingest_job", "today.log")
    assert today_req.run_key.startswith("ingest:") and today_req.run_key != req.run_key
    (ran,) = run_requested(instance, dlcdn, [today_req], print)
    assert ran.success
    (mat,) = ran.asset_materializations_for_node("requests")
    assert mat.metadata["dagster/row_count"].value == 3
    t2 = tick(instance, dlcdn, t1.cursor)
    assert t2.run_requests == []
    second = t2

    # the same content under another name triggers nothing
    shutil.copy(landing / "a.log", landing / "a-copy.log")
    third = tick(instance, dlcdn, second.cursor)
    assert third.run_requests == []

    # a grown file runs again (same partition, new run key)
    with (landing / "a.log").open("ab") as f:
        f.write(log_lines(day, 10, start=50))
    fourth = tick(instance, dlcdn, third.cursor)
    (grown,) = fourth.run_requests
    assert grown.partition_key == "a.log" and grown.run_key != req.run_key
    assert all(r.success for r in run_requested(instance, dlcdn, [grown], print))

    # a late file for an earlier, finished week: its day and its week are re-run
    late_day = dt.date(2026, 10, 7)
    (landing / "late.log.gz").write_bytes(gzip.compress(log_lines(late_day, 5, ip="203.0.113.9")))
    fifth = tick(instance, dlcdn, fourth.cursor)
    # the grown a.log re-aggregates its day (its week is still open); the late file is new
    assert sorted((r.job_name, r.partition_key) for r in fifth.run_requests) == [
        ("daily_job", "2026-11-17"),
        ("ingest_job", "late.log.gz"),
    ]
    ingest = [r for r in fifth.run_requests if r.job_name == "ingest_job"]
    assert all(r.success for r in run_requested(instance, dlcdn, ingest, print))
    sixth = tick(instance, dlcdn, fifth.cursor)
    assert sorted((r.job_name, r.partition_key) for r in sixth.run_requests) == [
        ("daily_job", "2026-10-07"),
        ("weekly_job", "2026-10-05"),
    ]


def test_materialize_in_process_reports_metadata(env) -> None:  # type: ignore[no-untyped-def]
    instance, dlcdn, landing = env
    (landing / "x.log").write_bytes(log_lines(dt.date(2026, 11, 16), 30) + b"not a log line\n")
    instance.add_dynamic_partitions("landing_files", ["x.log"])
    result = dg.materialize(
        [requests_asset],
        partition_key="x.log",
        instance=instance,
        resources={"dlcdn": dlcdn},
    )
    assert result.success
    (mat,) = result.asset_materializations_for_node("requests")
    md = {k: v.value for k, v in mat.metadata.items()}
    assert (md["dagster/row_count"], md["rows_rejected"], md["lines_total"]) == (30, 1, 31)
    assert md["reject_ratio"] == pytest.approx(1 / 31, abs=1e-5)
    assert "| 31 | 0 | 30 | 1 |" in md["preview"]

    daily = dg.materialize(
        [daily_traffic],
        partition_key="2026-11-16",
        instance=instance,
        resources={"dlcdn": dlcdn},
    )
    (mat,) = daily.asset_materializations_for_node("daily_traffic")
    assert mat.metadata["requests"].value == 30


def test_backfill_of_three_days_from_the_command_line(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    instance, dlcdn, landing = env
    from pipeline.ingest.run import ingest_file
    from pipeline.settings import Settings
    from pipeline.warehouse.store import Warehouse

    for d in (16, 17, 18):
        f = tmp_path / f"d{d}.log"
        f.write_bytes(log_lines(dt.date(2026, 11, d), d))
        ingest_file(f, Warehouse(Path(dlcdn.warehouse)), Settings(), ip_key=b"k" * 32)
    out = subprocess.run(
        [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "-m",
            "assets.definitions",
            "--select",
            "daily_traffic,rollups",
            "--partition-range",
            "2026-11-16...2026-11-18",
        ],
        cwd=tmp_path,  # nothing the command writes may land in the repository
        env={**os.environ, "DLCDN_WAREHOUSE": dlcdn.warehouse},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    con = Warehouse(Path(dlcdn.warehouse)).connect(read_only=True)
    expected = [("2026-11-16", 16), ("2026-11-17", 17), ("2026-11-18", 18)]
    for table in ("daily_traffic", "rollup_place", "rollup_content"):
        rows = con.sql(f"SELECT date, sum(requests) FROM {table} GROUP BY ALL ORDER BY 1")
        assert [(d.isoformat(), int(n)) for d, n in rows.fetchall()] == expected, table
    con.close()


def _default_signals() -> None:
    # a process started in the background inherits ignored SIGINT/SIGTERM; restore them
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def test_web_server_starts_on_localhost_and_stops_by_pid(env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    proc = subprocess.Popen(
        [
            str(BIN / "dagster-webserver"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            "assets.definitions",
        ],
        cwd=tmp_path,  # nothing the server writes may land in the repository
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_default_signals,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        info = None
        while time.monotonic() < deadline and info is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as r:
                    info = json.loads(r.read())
            except OSError:
                assert proc.poll() is None, (
                    proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                )
                time.sleep(0.5)
        assert info is not None and "dagster_webserver_version" in info
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) is not None
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)


def test_planted_bad_rows_fail_the_blocking_check(env) -> None:  # type: ignore[no-untyped-def]
    import polars as pl

    from assets.defs.checks import requests_quality

    instance, dlcdn, landing = env
    (landing / "bad.log").write_bytes(log_lines(dt.date(2026, 11, 16), 40))
    instance.add_dynamic_partitions("landing_files", ["bad.log"])
    run = dict(instance=instance, resources={"dlcdn": dlcdn}, partition_key="bad.log")
    good = dg.materialize([requests_asset, requests_quality], **run)
    (evaluation,) = good.get_asset_check_evaluations()
    assert evaluation.passed

    # plant rows the parser never writes: a status out of range, an unknown arch, negative bytes
    (part,) = list((Path(dlcdn.warehouse) / "requests").rglob("*.parquet"))
    frame = pl.read_parquet(part, hive_partitioning=False)
    frame = frame.with_columns(
        pl.when(pl.col("line_no") <= 2)
        .then(pl.lit(999, pl.Int16))
        .otherwise(pl.col("status"))
        .alias("status"),
        pl.when(pl.col("line_no") == 3).then(pl.lit("vax")).otherwise(pl.col("arch")).alias("arch"),
        pl.when(pl.col("line_no") == 4)
        .then(pl.lit(-1, pl.Int64))
        .otherwise(pl.col("bytes"))
        .alias("bytes"),
    )
    frame.write_parquet(part)
    bad = dg.materialize([requests_asset, requests_quality], raise_on_error=False, **run)
    (evaluation,) = bad.get_asset_check_evaluations()
    assert not evaluation.passed
    failures = evaluation.metadata["failures"].value
    assert "expect_column_values_to_be_between(status) | 2 | 40" in failures
    assert "expect_column_values_to_be_in_set(arch) | 1 | 40" in failures
    assert "expect_column_values_to_be_between(bytes) | 1 | 40" in failures
    assert evaluation.metadata["data_docs"].value.endswith("index.html")


def test_a_file_that_fails_its_check_does_not_reach_the_day_aggregates(env) -> None:  # type: ignore[no-untyped-def]
    import polars as pl

    instance, dlcdn, landing = env
    day = TODAY - dt.timedelta(days=3)
    (landing / "bad.log").write_bytes(log_lines(day, 20))
    first = tick(instance, dlcdn, None)
    (req,) = first.run_requests
    # the file is ingested, then its data is damaged before the check runs (as a bad parser would)
    from pipeline.ingest.run import ingest_file
    from pipeline.settings import Settings
    from pipeline.warehouse.store import Warehouse

    ingest_file(landing / "bad.log", Warehouse(Path(dlcdn.warehouse)), Settings())
    (part,) = list((Path(dlcdn.warehouse) / "requests").rglob("*.parquet"))
    pl.read_parquet(part, hive_partitioning=False).with_columns(
        pl.lit(999, pl.Int16).alias("status")
    ).write_parquet(part)
    (result,) = run_requested(instance, dlcdn, [req], print)
    assert not all(c.passed for c in result.get_asset_check_evaluations())
    second = tick(instance, dlcdn, first.cursor)
    assert [r for r in second.run_requests if r.job_name == "daily_job"] == []
