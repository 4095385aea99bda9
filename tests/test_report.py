"""The weekly report: its numbers come from the SQL files, it has its charts and tables, the mail
is well formed, and it renders in headless Chromium."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess
from pathlib import Path

import mmdb_factory as factory
import polars as pl
import pytest
from netutil import free_port

from pipeline.geo.geoip import DBIP_ATTRIBUTION, GEOLITE2_ATTRIBUTION, GeoIP
from pipeline.ingest.run import ingest_file
from pipeline.report import build as report
from pipeline.settings import Settings, load
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
def rep(wh: Path) -> report.WeeklyReport:
    with GeoIP.open() as geo:  # the embedded default, DB-IP City Lite
        return report.build(wh, WEEK, attributions=geo.attributions())


def test_headline_numbers_come_from_sql(rep: report.WeeklyReport, wh: Path) -> None:
    truth = queries.run(
        wh,
        "SELECT count(*) AS n, sum(bytes) AS b FROM requests WHERE date BETWEEN '2026-11-09' AND '2026-11-15'",
    ).row(0)
    assert rep.numbers["requests"] == truth[0] and rep.numbers["bytes"] == truth[1]
    assert f"{truth[0]:,}" in rep.text and f"{truth[0]:,}" in rep.html
    assert WEEK in rep.subject and f"{truth[0]:,} requests" in rep.subject
    assert re.fullmatch(r"[+-]\d+\.\d%", str(rep.numbers["requests_change"]))


def test_sections_charts_tables_and_attribution(rep: report.WeeklyReport) -> None:
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
    assert DBIP_ATTRIBUTION in rep.html and DBIP_ATTRIBUTION in rep.text
    # what "unique clients" means is said where the number is read
    for body in (rep.html, rep.text):
        assert "Unique clients: distinct client ids over the week" in body
        assert "exact below 1,024" in body
    assert sorted(rep.attachments) == sorted(
        f"{WEEK}-{n}.csv"
        for n in ("countries", "arch", "branches", "pops", "heavy-hitters", "placement-frontier")
    )


@pytest.mark.parametrize(
    ("attachment", "sql", "params"),
    [
        ("countries", "traffic_by_country", {"grain": "week"}),
        ("arch", "traffic_by_arch", {}),
        ("branches", "traffic_by_branch", {}),
        ("pops", "cache_by_pop", {}),
        ("heavy-hitters", "heavy_hitters", {"factor": 20}),
    ],
)
def test_each_csv_is_its_sql_files_result(
    rep: report.WeeklyReport, wh: Path, attachment: str, sql: str, params: dict[str, object]
) -> None:
    # the attachment is byte for byte the statement's result over the week, run here on its own
    truth = queries.run(
        wh, queries.sql_file(sql), {"start": "2026-11-09", "end": "2026-11-15", **params}
    )
    assert truth.height >= 1
    assert rep.attachments[f"{WEEK}-{attachment}.csv"] == truth.write_csv().encode()


def _section(text: str, heading: str) -> list[list[str]]:
    """The rows under a heading of the plain-text report, split on whitespace."""
    block = text.split("\n" + heading, 1)[1].split("\n\n", 1)[0]
    return [line.split() for line in block.splitlines()[1:]]


def test_country_and_branch_sections_hold_the_counts(rep: report.WeeklyReport, wh: Path) -> None:
    # counted here straight from requests, not through the report's SQL files
    week = "date BETWEEN '2026-11-09' AND '2026-11-15'"
    countries = queries.run(
        wh,
        f"SELECT coalesce(country, 'unknown') AS c, count(*) AS n FROM requests WHERE {week} "
        "GROUP BY ALL ORDER BY n DESC, c LIMIT 10",
    ).rows()
    rows = _section(rep.text, "DEMAND BY COUNTRY")
    assert [(r[0], int(r[1].replace(",", ""))) for r in rows] == countries
    branches = queries.run(
        wh,
        f"SELECT branch_resolved AS b, count(*) AS n FROM requests WHERE {week} "
        "AND branch_resolved IS NOT NULL GROUP BY ALL ORDER BY n DESC, b",
    ).rows()
    rows = _section(rep.text, "BRANCHES")
    assert [(r[0], int(r[2].replace(",", ""))) for r in rows] == branches[: len(rows)]
    assert len(rows) >= 10


def test_latency_cost_frontier_section(rep: report.WeeklyReport) -> None:
    # rule: the frontier is charted, tabled and attached; cheaper rows are slower, each step buys
    # at least the minimum gain
    assert "Latency for the money" in rep.html and "LATENCY FOR THE MONEY" in rep.text
    assert rep.images["frontier"].startswith(b"\x89PNG")
    frontier = pl.read_csv(io.BytesIO(rep.attachments[f"{WEEK}-placement-frontier.csv"]))
    assert frontier.height >= 2
    costs, rtts = frontier["cost_month_eur"].to_list(), frontier["mean_latency_ms"].to_list()
    assert costs == sorted(costs) and len(set(costs)) == len(costs)
    assert all(b <= a - 0.4 for a, b in zip(rtts, rtts[1:], strict=False))  # 0.5 ms, rounded
    assert f"{costs[-1]:,}" in rep.html


def test_footer_credits_the_geoip_databases_in_use(wh: Path, tmp_path: Path) -> None:
    # Rule: the footer credits the databases the settings select, as their licences ask: with a
    # MaxMind GeoLite2 city database MaxMind's line and not the default's DB-IP one; one line each.
    city = factory.write_city(tmp_path / "GeoLite2-City.mmdb", "geoip2")
    asn = factory.write_asn(tmp_path / "dbip-asn-lite.mmdb", "dbip")
    maxmind = report.build_for(load({"DLCDN_GEOIP_CITY": str(city)}), wh, WEEK)
    for out in (maxmind.text, maxmind.html):
        assert GEOLITE2_ATTRIBUTION in out and DBIP_ATTRIBUTION not in out
    both = report.build_for(
        load({"DLCDN_GEOIP_CITY": str(city), "DLCDN_GEOIP_ASN": str(asn)}), wh, WEEK
    )
    assert both.text.endswith(f"\n{GEOLITE2_ATTRIBUTION}.\n{DBIP_ATTRIBUTION}.")
    assert f"{GEOLITE2_ATTRIBUTION}.<br>{DBIP_ATTRIBUTION}." in both.html


def test_mail_structure(rep: report.WeeklyReport) -> None:
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
    csvs = {
        p.get_filename(): p.get_content().replace("\r\n", "\n").encode()
        for p in msg.iter_attachments()
        if p.get_content_type() == "text/csv"
    }
    assert csvs == rep.attachments


def test_renders_in_headless_chromium(rep: report.WeeklyReport, tmp_path: Path) -> None:
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
    assert "DATA QUALITY" in text and DBIP_ATTRIBUTION in text  # the default database
    assert (
        not (wh / "outbox" / f"{WEEK}.eml").exists()
        and (wh / "outbox" / "sent" / f"{WEEK}.json").exists()
    )


def test_a_failed_send_fails_the_dagster_run(
    wh: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dagster as dg

    from assets.defs.report import weekly_report, weekly_report_email
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
