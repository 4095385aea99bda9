"""A writer killed (SIGKILL) at any named step of ingest, commit, daily aggregate or outbox, then
run again, leaves exactly what a clean run leaves (`pipeline.faults` names the steps)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from netutil import free_port

from pipeline import faults
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
    """Every file in the warehouse's table folders, hidden and temporary ones included (the top
    level holds the DuckDB catalogue, the lock and the reference tables, rewritten by writers)."""
    return sorted(
        str(p.relative_to(wh))
        for p in wh.rglob("*")
        if p.is_file() and p.parent != wh and ".staging" not in p.parts
    )


def _same_as_clean(wh: Path, clean: Path) -> None:
    assert _files(wh) == _files(clean)
    for rel in _files(clean):
        if not rel.startswith("ingested_files/"):  # the manifest records when, so it differs there
            assert (wh / rel).read_bytes() == (clean / rel).read_bytes(), rel
    mine, theirs = _tables(wh), _tables(clean)
    for name in theirs:
        assert mine[name].equals(theirs[name]), name
    assert not any((wh / ".staging").iterdir())


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # two small files (one batch each): enough for a crash in the first file's commit and in the
    # second's, after the first is committed
    out = tmp_path_factory.mktemp("landing")
    generate(out, dt.date(2026, 11, 16), 2, 3_000, fmt="combined", seed=5)
    (out / "SYNTHETIC.txt").unlink()
    return out


@pytest.fixture(scope="module")
def clean(landing: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    wh = tmp_path_factory.mktemp("clean") / "wh"
    subprocess.run([DLCDN, "ingest", str(landing)], env=_env(wh), check=True, capture_output=True)
    return wh


# Every ingest and commit point, in the first file (@1) and, for most, in the second (@2: the
# first file is committed by then). Parquet moves: one per file here (a day of requests each).
INGEST_CRASHES = [
    "ingest:batch@1",
    "ingest:batch@2",
    "ingest:staged@1",
    "ingest:staged@2",
    "commit:parquet_moved@1",
    "commit:parquet_moved@2",
    "commit:before_manifest@1",
    "commit:before_manifest@2",
    "commit:manifest_unrenamed@1",
    "commit:manifest_unrenamed@2",
    "commit:manifest_renamed@1",
    "commit:manifest_renamed@2",
    "commit:views_refreshed@1",
    "commit:views_refreshed@2",
]
AGGREGATE_CRASHES = ["aggregate:unrenamed", "aggregate:renamed"]
OUTBOX_CRASHES = ["outbox:unrenamed", "outbox:written", "outbox:sent", "outbox:recorded"]


def test_every_crash_point_is_tested() -> None:
    tested = {c.partition("@")[0] for c in INGEST_CRASHES + AGGREGATE_CRASHES + OUTBOX_CRASHES}
    assert tested == set(faults.POINTS)


def _killed_at(point: str, args: list[str], env: dict[str, str], **kw: object) -> None:
    """Runs `args` with the crash point set and checks that the process died of SIGKILL."""
    out = subprocess.run(
        args, env=env | {faults.VARIABLE: point}, capture_output=True, text=True, **kw
    )  # type: ignore[call-overload]
    assert out.returncode == -signal.SIGKILL, (point, out.returncode, out.stderr[-2000:])


@pytest.mark.parametrize("point", INGEST_CRASHES)
def test_crash_in_ingest_then_rerun_equals_a_clean_run(
    point: str, landing: Path, clean: Path, tmp_path: Path
) -> None:
    wh = tmp_path / "wh"
    _killed_at(point, [DLCDN, "ingest", str(landing)], _env(wh))
    # whatever the kill left, readers see only whole files that the manifest names
    if (wh / "warehouse.duckdb").exists():
        visible = _tables(wh)
        named = set(visible["ingested_files"]["file_id"].to_list())
        assert set(visible["requests"]["file_id"].unique().to_list()) <= named
    rerun = subprocess.run(
        [DLCDN, "ingest", str(landing)], env=_env(wh), capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    _same_as_clean(wh, clean)


_BUILD_DAY = (
    "import sys, datetime as dt; from pathlib import Path;"
    "from pipeline.warehouse import aggregates; from pipeline.warehouse.store import Warehouse;"
    "aggregates.build_daily_traffic(Warehouse(Path(sys.argv[1])), dt.date(2026, 11, 16))"
)


def _daily(wh: Path) -> pl.DataFrame:
    con = Warehouse(wh).connect(read_only=True)
    try:
        return con.sql("SELECT * FROM daily_traffic").pl().sort(pl.all())
    finally:
        con.close()


@pytest.fixture(scope="module")
def clean_daily(clean: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    wh = tmp_path_factory.mktemp("clean_daily") / "wh"
    shutil.copytree(clean, wh)
    subprocess.run([sys.executable, "-c", _BUILD_DAY, str(wh)], env=_env(wh), check=True)
    return wh


@pytest.mark.parametrize("point", AGGREGATE_CRASHES)
def test_crash_in_the_daily_aggregate_then_rerun_equals_a_clean_run(
    point: str, clean: Path, clean_daily: Path, tmp_path: Path
) -> None:
    wh = tmp_path / "wh"
    shutil.copytree(clean, wh)
    _killed_at(point, [sys.executable, "-c", _BUILD_DAY, str(wh)], _env(wh))
    subprocess.run([sys.executable, "-c", _BUILD_DAY, str(wh)], env=_env(wh), check=True)
    _same_as_clean(wh, clean_daily)
    got, want = (_daily(w) for w in (wh, clean_daily))
    assert got.equals(want) and got.height > 0


_SEND = (
    "import sys; from email.message import EmailMessage; from pathlib import Path;"
    "from pipeline.report import mail; from pipeline.settings import load;"
    "m = EmailMessage(); m['Subject'] = 'week 2026-W47'; m.set_content('579 bytes');"
    "print(mail.deliver(m, '2026-W47', Path(sys.argv[1]), load(), retries=1).status)"
)


@pytest.mark.parametrize("point", OUTBOX_CRASHES)
def test_crash_in_the_outbox_then_rerun_sends_once_and_records_it(
    point: str, tmp_path: Path
) -> None:
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self) -> None:
            self.messages: list[bytes] = []

        async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
            self.messages.append(envelope.original_content or envelope.content)
            return "250 OK"

    inbox, port = Inbox(), free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        outbox = tmp_path / "outbox"
        env = _env(tmp_path / "wh") | {
            "DLCDN_REPORT_FROM": "dlcdn@alpinelinux.org",
            "DLCDN_REPORT_TO": "infra@alpinelinux.org",
            "DLCDN_SMTP_HOST": "127.0.0.1",
            "DLCDN_SMTP_PORT": str(port),
            "DLCDN_SMTP_TLS": "none",
        }
        args = [sys.executable, "-c", _SEND, str(outbox)]
        _killed_at(point, args, env, cwd=tmp_path)
        rerun = subprocess.run(args, env=env, capture_output=True, text=True, cwd=tmp_path)
        assert rerun.returncode == 0, rerun.stderr
        again = subprocess.run(args, env=env, capture_output=True, text=True, cwd=tmp_path)
    finally:
        server.stop()
    # what a clean send leaves: the record and the message in sent/, nothing pending
    files = sorted(str(p.relative_to(outbox)) for p in outbox.rglob("*") if p.is_file())
    assert files == [".lock", "sent/2026-W47.eml", "sent/2026-W47.json"]
    assert again.stdout.strip() == "already_sent"
    # sent once; the one window of at-least-once: the server took it, the record was not written
    assert len(inbox.messages) == (2 if point == "outbox:sent" else 1)
    # a crash after the record was written: the re-run finds it and only finishes the move
    assert rerun.stdout.strip() == ("already_sent" if point == "outbox:recorded" else "sent")


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
