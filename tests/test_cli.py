"""The `dlcdn` command line: help everywhere, accounting printed, bound parameters, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from shared_corpora import CORPORA, needs_corpora

from assets.cli import main

DLCDN = str(Path(sys.executable).parent / "dlcdn")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("DLCDN_")}
    e |= {
        "DLCDN_WAREHOUSE": str(tmp_path / "wh"),
        "DLCDN_IP_KEY": "cli-test-key-0123456789",
        "NO_COLOR": "1",
    }
    return e


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DLCDN, *args], capture_output=True, text=True, env=env, timeout=120)


# every command the spec names; the list is checked against the registered commands below
COMMANDS = [
    "budget",
    "demo",
    "generate",
    "geoip",
    "ingest",
    "placement",
    "publish",
    "report",
    "rollup",
    "sql",
    "verify",
]


def test_the_command_list_is_every_registered_command() -> None:
    assert sorted(main.commands) == COMMANDS


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(cmd: str) -> None:
    out = CliRunner().invoke(main, [cmd, "--help"])
    assert out.exit_code == 0, out.output
    assert out.output.startswith(f"Usage: main {cmd} [OPTIONS]")
    # the command's own docstring is its help, and every option it takes is described
    summary = (main.commands[cmd].help or "").strip().splitlines()[0]
    assert summary and summary in " ".join(out.output.split())  # click wraps the text
    for param in main.commands[cmd].params:
        if isinstance(param, click.Option):
            assert param.opts[-1] in out.output and param.help, (cmd, param.name)


@needs_corpora
def test_ingest_prints_accounting_then_sql_answers(env: dict[str, str]) -> None:
    log = CORPORA / "lnav_test_logs/logfile_shop_access_log.0"
    out = run(env, "ingest", str(log))
    assert out.returncode == 0, out.stderr
    assert "1,000 lines = 0 blank + 1,000 parsed + 0 rejected" in out.stdout
    again = run(env, "ingest", str(log))
    assert "skipped, same content" in again.stdout
    q = run(
        env,
        "sql",
        "SELECT status, count(*) AS n FROM requests GROUP BY ALL ORDER BY status",
        "--format",
        "csv",
    )
    assert q.returncode == 0, q.stderr
    assert q.stdout.splitlines() == ["status,n", "200,938", "301,11", "302,20", "304,7", "404,24"]
    js = run(
        env,
        "sql",
        "--file",
        "sql/traffic_by_day.sql",
        "--param",
        "start=2019-01-22",
        "--param",
        "end=2019-01-22",
        "--format",
        "json",
    )
    assert js.returncode == 0, js.stderr
    rows = json.loads(js.stdout)
    assert rows[0]["requests"] == 1000 and rows[0]["source"] == "mirror"


def test_ingest_builds_the_rollups_and_rollup_catches_up(
    env: dict[str, str], tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    gen = run(env, "generate", "--out", str(logs), "--start", "2026-11-16", "--days", "2",
              "--lines-per-day", "2000", "--format", "fastly")  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    out = run(env, "ingest", *map(str, sorted(logs.glob("*.log"))))
    assert out.returncode == 0, out.stderr
    assert "rollups: 2 day(s) rebuilt (2026-11-16 .. 2026-11-17)" in out.stdout
    assert run(env, "rollup").stdout.strip() == "rollups: up to date"
    # a warehouse whose rollups are missing a day (built before they existed): rollup catches up
    (tmp_path / "wh" / "rollup_cdn" / "date=2026-11-17" / "part.parquet").unlink()
    assert "rollups: 1 day(s) rebuilt (2026-11-17 .. 2026-11-17)" in run(env, "rollup").stdout
    again = run(env, "rollup", "--start", "2026-11-16", "--end", "2026-11-16")
    assert "rollups: 1 day(s) rebuilt (2026-11-16 .. 2026-11-16)" in again.stdout
    raw = run(env, "sql", "SELECT count(*) AS n FROM requests", "--format", "csv")
    rolled = run(env, "sql", "SELECT sum(requests) AS n FROM rollup_cdn", "--format", "csv")
    assert rolled.stdout == raw.stdout and int(raw.stdout.split()[1]) > 3000


@needs_corpora
def test_sql_parameters_are_bound_not_pasted(env: dict[str, str]) -> None:
    run(env, "ingest", str(CORPORA / "lnav_test_logs/logfile_shop_access_log.0"))
    evil = "2019-01-22' OR 1=1 --"
    out = run(
        env,
        "sql",
        "SELECT count(*) AS n FROM requests WHERE CAST(date AS VARCHAR) = $d",
        "--param",
        f"d={evil}",
        "--format",
        "csv",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["n", "0"]
    ok = run(
        env,
        "sql",
        "SELECT count(*) AS n FROM requests WHERE CAST(date AS VARCHAR) = $d",
        "--param",
        "d=2019-01-22",
        "--format",
        "csv",
    )
    assert ok.stdout.splitlines() == ["n", "1000"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "/no/such/file.log"], "no such file or directory"),
        (["ingest", "--format", "weird", "x"], "unknown format 'weird'"),
        (["sql", "SELEC nonsense"], "SQL error"),
        (["sql", "SELECT 1", "--param", "novalue"], "use K=V"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(
    env: dict[str, str], args: list[str], message: str
) -> None:
    out = run(env, *args)
    assert out.returncode != 0
    assert message in out.stderr
    assert "Traceback" not in out.stderr


@needs_corpora
def test_a_bad_setting_names_the_setting(env: dict[str, str], tmp_path: Path) -> None:
    env["DLCDN_GEOIP_COUNTRY"] = str(tmp_path / "missing.mmdb")
    out = run(env, "geoip")
    assert out.returncode == 2
    assert "DLCDN_GEOIP_COUNTRY" in out.stderr and "Traceback" not in out.stderr
    env.pop("DLCDN_GEOIP_COUNTRY")
    env["DLCDN_IP_KEY"] = "short"
    out = run(env, "ingest", str(CORPORA / "lnav_test_logs/logfile_access_log.0"))
    assert out.returncode == 2 and "DLCDN_IP_KEY" in out.stderr


@needs_corpora
def test_a_file_of_unknown_format_is_named(env: dict[str, str], tmp_path: Path) -> None:
    junk = tmp_path / "readme.txt"
    junk.write_text("not a log\n")
    good = CORPORA / "lnav_test_logs/logfile_access_log.0"
    out = run(env, "ingest", str(junk), str(good))
    assert out.returncode == 1
    assert "readme.txt: unknown log format" in out.stderr
    assert "logfile_access_log.0: combined" in out.stdout  # the other file still went in


def test_geoip_lists_the_embedded_default(env: dict[str, str]) -> None:
    out = run(env, "geoip", "81.2.69.142")
    assert out.returncode == 0, out.stderr
    assert "DBIP-City-Lite" in out.stdout and "IP Geolocation by DB-IP" in out.stdout
    assert "| 81.2.69.142 | GB" in out.stdout


# `dlcdn generate --out DIR` then `dlcdn ingest DIR`, as the README says: every log goes in, the
# SYNTHETIC.txt marker stays for people to see and is passed over with a word (not a failure).
def test_a_generated_folder_ingests_as_written(env: dict[str, str], tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    gen = run(
        env, "generate", "--out", str(landing), "--start", "2026-11-16", "--days", "2",
        "--lines-per-day", "1500", "--gzip",
    )  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    out = run(env, "ingest", str(landing))
    assert out.returncode == 0, out.stderr
    assert f"{landing / 'SYNTHETIC.txt'}: skipped, the synthetic-data marker" in out.stdout
    assert (landing / "SYNTHETIC.txt").read_text().startswith("SYNTHETIC DATA.")
    names = run(env, "sql", "SELECT name FROM ingested_files ORDER BY name", "--format", "csv")
    assert names.stdout.splitlines()[1:] == sorted(p.name for p in landing.glob("*.log.gz"))
    assert len(names.stdout.splitlines()) == 3


# A file that is only called SYNTHETIC.txt is not the marker: it is tried as a log, and fails
# as any unknown file does, by name.
def test_a_file_merely_named_like_the_marker_is_not_passed_over(
    env: dict[str, str], tmp_path: Path
) -> None:
    impostor = tmp_path / "SYNTHETIC.txt"
    impostor.write_text("dear diary\n")
    out = run(env, "ingest", str(impostor))
    assert out.returncode == 1
    assert "SYNTHETIC.txt: unknown log format" in out.stderr
