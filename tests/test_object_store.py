"""Landing files in an S3-compatible object store: a real server (moto's) on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pyarrow.fs as pafs
import pytest
from netutil import free_port

from assets.demo import run_requested, tick
from assets.resources import DlcdnResource
from pipeline.ingest.landing import Landing

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    fs = pafs.S3FileSystem(
        endpoint_override=f"127.0.0.1:{port}",
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
    )
    fs.create_dir("alpine-logs")
    try:
        yield (
            fs,
            f"s3://alpine-logs/dl-cdn?endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1",
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _lines(day: dt.date, n: int) -> bytes:
    return b"".join(
        f'192.0.2.{i % 50} - - [{day:%d/%b/%Y}:12:00:{i % 60:02d} +0000] "GET /alpine/v3.22/main/aarch64/APKINDEX.tar.gz HTTP/1.1" 304 0 "-" "libfetch/2.0"\n'.encode()
        for i in range(n)
    )


def test_landing_objects_are_listed_fingerprinted_and_ingested(
    s3, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    fs, uri = s3
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)
    plain, packed = _lines(day, 300), gzip.compress(_lines(day, 200))
    with fs.open_output_stream("alpine-logs/dl-cdn/mirror/access.log") as f:
        f.write(plain)
    with fs.open_output_stream("alpine-logs/dl-cdn/fastly/2026/part-0001.log.gz") as f:
        f.write(packed)

    landing = Landing(uri)
    assert [f.rel for f in landing.files()] == ["fastly/2026/part-0001.log.gz", "mirror/access.log"]
    # the fingerprint of an object is the fingerprint of the same bytes on disk
    local = tmp_path / "access.log"
    local.write_bytes(plain)
    assert landing.fingerprint("mirror/access.log") == Landing(tmp_path).fingerprint("access.log")

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DLCDN_IP_KEY", "object-store-key-0123456789")
    instance = dg.DagsterInstance.get()
    dlcdn = DlcdnResource(warehouse=str(tmp_path / "wh"), landing=uri)
    first = tick(instance, dlcdn, None)
    assert sorted(r.partition_key for r in first.run_requests) == [
        "fastly/2026/part-0001.log.gz",
        "mirror/access.log",
    ]
    results = run_requested(instance, dlcdn, list(first.run_requests), print)
    assert all(
        r.success and all(c.passed for c in r.get_asset_check_evaluations()) for r in results
    )
    con = dlcdn.open_warehouse().connect(read_only=True)
    rows = con.sql("SELECT name, rows_parsed FROM ingested_files ORDER BY name").fetchall()
    con.close()
    assert rows == [("access.log", 300), ("part-0001.log.gz", 200)]
    # unchanged objects trigger nothing; the days they touched are re-aggregated
    second = tick(instance, dlcdn, first.cursor)
    assert {r.job_name for r in second.run_requests} <= {"daily_job", "weekly_job"}
    assert ("daily_job", day.isoformat()) in {
        (r.job_name, r.partition_key) for r in second.run_requests
    }
    instance.dispose()
