"""The weekly report: its numbers come from the SQL files, it has its charts and tables, the mail
is well formed, and it renders in headless Chromium."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from netutil import free_port

from pipeline.geo.geoip import GeoIP
from pipeline.ingest.run import ingest_file
from pipeline.report import build as report
from pipeline.settings import Settings
from pipeline.synthetic.generate import generate
from pipeline.warehouse import queries, rollups
from pipeline.warehouse.store import Warehouse

START = dt.date(2026, 10, 26)  # three ISO weeks: W44, W45, W46
WEEK = "2026-W46"


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    files = generate(tmp / "landing", START, 21, 1500, fmt="fastly", seed=21)
    w = Warehouse(tmp / "wh")
    geo = GeoIP.open()
    days = set()
    for f in files:
        days |= set(ingest_file(f, w, Settings(), geo=geo, ip_key=b"k" * 32).dates)
    geo.close()
    rollups.build_days(w, days)  # what `dlcdn ingest` does after its files
    return tmp / "wh"


@pytest.fixture(scope="module")
def rep(wh: Path) -> report.Report:
    return report.build(wh, WEEK)


def test_headline_numbers_come_from_sql(rep: report.Report, wh: Path) -> None:
    truth = queries.run(
        wh,
        "SELECT count(*) AS n, sum(bytes) AS b FROM requests WHERE date BETWEEN '2026-11-09' AND '2026-11-15'",
    ).row(0)
    assert rep.numbers["requests"] == truth[0] and rep.numbers["bytes"] == truth[1]
    assert f"{truth[0]:,}" in rep.text and f"{truth[0]:,}" in rep.html
    assert WEEK in rep.subject and f"{truth[0]:,} requests" in rep.subject
    assert re.fullmatch(r"[+-]\d+\.\d%", str(rep.numbers["requests_change"]))


def test_sections_charts_tables_and_attribution(rep: report.Report) -> None:
    for section in (
        "Where the demand comes from",
        "Architectures (CI hardware)",
        "end-of-life",
        "CDN cache and origin load",
        "Egress and budget",
        "Mirror placement",
        "Heavy hitters",
        "Data quality",
    ):
        assert section in rep.html
    assert "x86_64:" in rep.html and "x86:" in rep.html
    assert len(rep.images) >= 4
    for cid, png in rep.images.items():
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and f'src="cid:{cid}"' in rep.html
    assert set(re.findall(r'src="cid:([^"]+)"', rep.html)) == set(rep.images)
    assert "<script" not in rep.html.lower()
    assert report.ATTRIBUTION in rep.html and report.ATTRIBUTION in rep.text
    for name, data in rep.attachments.items():
        assert name.startswith(WEEK) and pl.read_csv(io.BytesIO(data)).height >= 1


def test_mail_structure(rep: report.Report) -> None:
    msg = report.to_email(rep, "dlcdn@example.org", ("team@example.org",))
    assert msg.get_content_type() == "multipart/mixed"
    alternative = next(
        p for p in msg.iter_parts() if p.get_content_type() == "multipart/alternative"
    )
    kinds = [p.get_content_type() for p in alternative.iter_parts()]
    assert kinds == ["text/plain", "multipart/related"]
    related = list(alternative.iter_parts())[1]
    parts = list(related.iter_parts())
    assert parts[0].get_content_type() == "text/html"
    cids = {p["Content-ID"].strip("<>") for p in parts[1:] if p.get_content_type() == "image/png"}
    assert cids == set(rep.images)
    csvs = [p.get_filename() for p in msg.iter_attachments() if p.get_content_type() == "text/csv"]
    assert len(csvs) == len(rep.attachments)


def test_renders_in_headless_chromium(rep: report.Report, tmp_path: Path) -> None:
    from PIL import Image

    chromium = shutil.which("chromium")
    assert chromium, "make test installs Debian's chromium"
    html = report.write(rep, tmp_path / "report")
    for cid in rep.images:  # every image the HTML references is there
        assert (html.parent / f"{cid}.png").exists()
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--hide-scrollbars",
            "--window-size=700,2400",
            f"--screenshot={shot}",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    img = Image.open(shot).convert("RGB")
    colors = img.getcolors(maxcolors=1_000_000) or []
    assert len(colors) > 50  # text, tables and charts, not a blank page
    # the header band is the report's teal, so the page (and its CSS) did render
    assert img.getpixel((350, 30)) == (0x0B, 0x72, 0x85)


class _Inbox:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        self.messages.append(envelope.original_content or envelope.content)
        return "250 OK"


def _env(wh: Path, port: int) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("DLCDN_")}
    return env | {
        "DLCDN_WAREHOUSE": str(wh),
        "DLCDN_IP_KEY": "report-key-0123456789",
        "DLCDN_SMTP_HOST": "127.0.0.1",
        "DLCDN_SMTP_PORT": str(port),
        "DLCDN_SMTP_TLS": "none",
        "DLCDN_REPORT_FROM": "dlcdn@example.org",
        "DLCDN_REPORT_TO": "team@example.org",
    }


def test_report_is_mailed_exactly_once_over_real_smtp(wh: Path) -> None:
    import email
    import email.policy
    import sys

    from aiosmtpd.controller import Controller

    dlcdn = str(Path(sys.executable).parent / "dlcdn")
    port = free_port()
    env = _env(wh, port)
    # the server is down: the message stays in the outbox and the command fails, naming the server
    down = subprocess.run(
        [dlcdn, "report", "--week", WEEK, "--send"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (
        down.returncode != 0
        and f"127.0.0.1:{port}" in down.stderr
        and "Traceback" not in down.stderr
    )
    assert (wh / "outbox" / f"{WEEK}.eml").exists()

    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        first = subprocess.run(
            [dlcdn, "report", "--week", WEEK, "--send"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert first.returncode == 0, first.stderr
        second = subprocess.run(
            [dlcdn, "report", "--week", WEEK, "--send"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert second.returncode == 0 and "already_sent" in second.stdout
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
    msg = email.message_from_bytes(inbox.messages[0], policy=email.policy.default)
    assert WEEK in msg["Subject"]
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    pngs = {
        p["Content-ID"].strip("<>"): p.get_content()
        for p in msg.walk()
        if p.get_content_type() == "image/png"
    }
    assert len(pngs) >= 4 and all(f"cid:{cid}" in html for cid in pngs)
    assert all(data.startswith(b"\x89PNG") for data in pngs.values())
    assert "DATA QUALITY" in text and report.ATTRIBUTION in text
    assert (
        not (wh / "outbox" / f"{WEEK}.eml").exists()
        and (wh / "outbox" / "sent" / f"{WEEK}.json").exists()
    )


def test_a_failed_send_fails_the_dagster_run(
    wh: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg

    from assets.report import weekly_report, weekly_report_email
    from assets.resources import DlcdnResource

    work = tmp_path / "wh"
    shutil.copytree(wh, work, ignore=shutil.ignore_patterns("outbox", "reports"))
    for k, v in _env(work, free_port()).items():
        monkeypatch.setenv(k, v)
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    result = dg.materialize(
        [weekly_report, weekly_report_email],
        partition_key="2026-11-09",
        resources={"dlcdn": DlcdnResource(warehouse=str(work), landing=str(tmp_path))},
        instance=dg.DagsterInstance.get(),
        raise_on_error=False,
    )
    assert not result.success
    assert len(result.asset_materializations_for_node("weekly_report")) == 1
    assert result.asset_materializations_for_node("weekly_report_email") == []
    assert (work / "outbox" / f"{WEEK}.eml").exists()  # nothing lost: it waits in the outbox
