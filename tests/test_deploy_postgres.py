"""Dagster on PostgreSQL for real: the shipped production instance configuration
(deploy/dagster/dagster.yaml) against a PostgreSQL server started for the test; the landing sensor,
an ingest run and a daily run recorded there."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from pgserver import create_database, running_postgres

from assets.demo import run_requested, tick
from assets.resources import DlcdnResource

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _log(day: dt.date, n: int) -> bytes:
    return b"".join(
        f"203.0.113.{i % 100} - - [{day:%d/%b/%Y}:12:{i // 60 % 60:02d}:{i % 60:02d} +0000] "
        f'"GET /alpine/v3.22/main/aarch64/APKINDEX.tar.gz HTTP/1.1" 304 0 "-" "libfetch/2.0"\n'.encode()
        for i in range(n)
    )


@pytest.mark.slow
def test_sensor_ingest_and_daily_runs_on_postgres(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg2
    from dagster._core.scheduler.instigation import InstigatorStatus
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    with running_postgres() as pg:
        create_database(pg, "dagster")
        for k, v in pg.env("dagster").items():
            monkeypatch.setenv(k, v)
        home = tmp_path / "dagster_home"
        home.mkdir()
        shutil.copy(REPO / "deploy" / "dagster" / "dagster.yaml", home / "dagster.yaml")
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        monkeypatch.setenv("DLCDN_IP_KEY", "postgres-test-key-0123456789")
        landing = tmp_path / "landing"
        landing.mkdir()
        day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=3)
        (landing / "mirror-access.log").write_bytes(_log(day, 400))

        instance = dg.DagsterInstance.get()
        try:
            assert isinstance(instance.run_storage, PostgresRunStorage)
            assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
            dlcdn = DlcdnResource(warehouse=str(tmp_path / "wh"), landing=str(landing))

            first = tick(instance, dlcdn, None)
            (ingest,) = first.run_requests or []
            assert (ingest.job_name, ingest.partition_key) == ("ingest_job", "mirror-access.log")
            (ran,) = run_requested(instance, dlcdn, [ingest], print)
            assert ran.success and all(c.passed for c in ran.get_asset_check_evaluations())

            second = tick(instance, dlcdn, first.cursor)
            daily = [r for r in second.run_requests or [] if r.job_name == "daily_job"]
            assert [r.partition_key for r in daily] == [day.isoformat()]
            (ran,) = run_requested(instance, dlcdn, daily, print)
            checks = {c.check_name: c.passed for c in ran.get_asset_check_evaluations()}
            assert ran.success and checks == {
                "daily_traffic_quality": True,
                "daily_files_intact": True,
                "rollups_match_requests": True,
            }
            # the instance reads back from PostgreSQL what the runs recorded
            mat = instance.get_latest_materialization_event(dg.AssetKey("daily_traffic"))
            assert mat is not None and mat.asset_materialization is not None
            assert mat.asset_materialization.partition == day.isoformat()
            assert instance.get_dynamic_partitions("landing_files") == ["mirror-access.log"]
        finally:
            instance.dispose()

        # docs/deploy.md's step that switches the sensor and the schedules on, on this instance
        for kind in ("sensor", "schedule"):
            out = subprocess.run(
                [str(BIN / "dagster"), kind, "start", "--start-all", "-m", "assets.definitions"],
                cwd=tmp_path, env=os.environ, capture_output=True, text=True, timeout=180,
            )  # fmt: skip
            assert out.returncode == 0, out.stderr[-2000:]
        instance = dg.DagsterInstance.get()
        try:
            running = {
                s.instigator_name
                for s in instance.all_instigator_state()
                if s.status == InstigatorStatus.RUNNING
            }
            assert running == {"landing_sensor", "daily_schedule", "weekly_schedule"}
        finally:
            instance.dispose()

        # ... and it is there in the database itself, not in files under DAGSTER_HOME
        con = psycopg2.connect(
            host=pg.host, port=pg.port, user=pg.user, password=pg.password, dbname="dagster"
        )
        try:
            with con.cursor() as cur:
                cur.execute("SELECT status, count(*) FROM runs GROUP BY status")
                assert dict(cur.fetchall()) == {"SUCCESS": 2}
                cur.execute(
                    "SELECT count(*) FROM event_logs WHERE dagster_event_type = "
                    "'ASSET_MATERIALIZATION' AND asset_key LIKE '%daily_traffic%'"
                )
                assert cur.fetchone() == (1,)
        finally:
            con.close()
        assert not list(home.glob("**/*.db"))  # no SQLite storage beside it
