"""Secrets stay in the environment; log content never becomes a file path; the UI binds to loopback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from pipeline.geo.privacy import SettingError
from pipeline.settings import load

REPO = Path(__file__).resolve().parents[1]
DLCDN = str(Path(sys.executable).parent / "dlcdn")
IP_KEY = "s3cr3t-ip-key-Zq8Kx1Vb7Rt"
SMTP_PASSWORD = "s3cr3t-smtp-Pw4Lm9Nc2Hd"


def _everything_written(*roots: Path) -> str:
    """Every byte under the roots as text, with Parquet values and SQLite rows decoded."""
    out = []
    for root in roots:
        for p in root.rglob("*"):
            if not p.is_file():
                continue
            out.append(p.read_bytes().decode("latin-1"))
            if p.suffix == ".parquet":
                df = pl.read_parquet(p, hive_partitioning=False)
                flat = [c for c, t in df.schema.items() if not isinstance(t, pl.List)]
                out.append(df.select(pl.col(flat).cast(pl.String)).write_csv())
            elif p.suffix == ".db":
                con = sqlite3.connect(p)
                for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'"):
                    out.extend(repr(row) for row in con.execute(f'SELECT * FROM "{table}"'))  # noqa: S608 - names from sqlite itself
                con.close()
    return "\n".join(out)


def test_secrets_never_reach_output_warehouse_or_dagster(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLCDN_")}
    env |= {
        "DLCDN_IP_KEY": IP_KEY,
        "DLCDN_SMTP_PASSWORD": SMTP_PASSWORD,
        "DLCDN_WAREHOUSE": str(tmp_path / "wh"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").write_text(
        (REPO / "dagster_home" / "dagster.yaml").read_text()
    )
    runs = [
        [DLCDN, "demo", "--dir", str(tmp_path / "demo"), "--days", "14", "--lines-per-day", "1000"],
        [DLCDN, "ingest", str(tmp_path / "demo" / "landing")],
        [DLCDN, "ingest", "--format", "nginx:$broken", str(tmp_path)],  # an error path
        [DLCDN, "sql", "SELECT * FROM duckdb_settings()"],
    ]
    printed = []
    for cmd in runs:
        out = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
        )
        printed.append(out.stdout + out.stderr)
    assert "every check passed" in printed[0]
    assert "leaked" not in printed[0]  # the tour ends with its summary, no teardown noise
    everything = "\n".join(printed) + _everything_written(
        tmp_path / "wh", tmp_path / "demo", tmp_path / "dagster_home"
    )
    assert len(everything) > 100_000  # the reading found the runs, the warehouse and the logs
    assert IP_KEY not in everything
    assert SMTP_PASSWORD not in everything


def test_a_config_file_holding_a_secret_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "dlcdn.toml"
    cfg.write_text(f'warehouse = "wh"\nsmtp_password = "{SMTP_PASSWORD}"\n')
    with pytest.raises(SettingError) as err:
        load({"DLCDN_CONFIG": str(cfg)})
    assert "DLCDN_SMTP_PASSWORD" in str(err.value) and SMTP_PASSWORD not in str(err.value)


def test_paths_in_log_lines_are_data_not_file_paths(tmp_path: Path) -> None:
    log = tmp_path / "evil.log"
    target = tmp_path / "pwned"
    log.write_text(
        f'192.0.2.1 - - [20/Nov/2026:10:00:00 +0000] "GET /../../../..{target} HTTP/1.1" 404 0 "-" "curl/8"\n'
        f'192.0.2.1 - - [20/Nov/2026:10:00:01 +0000] "GET /alpine/v3.22/main/x86_64/..%2F..%2F..%2Fetc%2Fpasswd-1-r0.apk HTTP/1.1" 404 0 "-" "curl/8"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLCDN_")}
    env |= {"DLCDN_WAREHOUSE": str(tmp_path / "wh"), "DLCDN_IP_KEY": IP_KEY}
    before = {p for p in tmp_path.rglob("*")}
    subprocess.run(
        [DLCDN, "ingest", str(log)], env=env, check=True, capture_output=True, timeout=120
    )
    created = {p for p in tmp_path.rglob("*")} - before
    assert not target.exists()
    assert all(p.is_relative_to(tmp_path / "wh") for p in created)


def test_the_ui_binds_to_loopback() -> None:
    dry = subprocess.run(
        ["make", "-n", "dev"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert "dagster dev" in dry and "-h 127.0.0.1" in dry
