"""The weekly traffic report: HTML (inline CSS, CID charts), plain text and CSV attachments.

Every number comes from a named SQL file in sql/ (or the budget model and the week's stored
placement decision built on them); the charts are static PNGs drawn with matplotlib. `build`
gathers and renders; `to_email` turns the result into one multipart message; `write` leaves the
files next to the warehouse.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import polars as pl

from pipeline import files
from pipeline.dates import iso_week_start
from pipeline.decisions import tables as decisions
from pipeline.geo.geoip import GeoIP
from pipeline.settings import DEFAULT_EGRESS_BUDGET_TB, Settings
from pipeline.warehouse import queries
from pipeline.warehouse.rollups import SKETCH_K

TB = 1e12
CLIENTS_NOTE = (
    f"Unique clients: distinct client ids over the week, merged from per-day sketches of "
    f"{SKETCH_K:,} ids: exact below {SKETCH_K:,}, an estimate above (standard error about 3%)"
)
REPORT_K_MAX = 3  # placement rows shown in the report (the decision has k = 1..5)


@dataclass
class WeeklyReport:
    """One ISO week's report, ready to write or mail."""

    week: str
    subject: str
    html: str
    text: str
    images: dict[str, bytes] = field(default_factory=dict)  # cid name -> PNG
    attachments: dict[str, bytes] = field(default_factory=dict)  # file name -> CSV
    numbers: dict[str, object] = field(default_factory=dict)


def _q(wh_root: Path, name: str, start: dt.date, end: dt.date, **params: object) -> pl.DataFrame:
    return queries.run(
        wh_root,
        queries.sql_file(name),
        {"start": start.isoformat(), "end": end.isoformat(), **params},
    )


def _change(now: float, before: float) -> str:
    if not before:
        return "new"
    return f"{100 * (now - before) / before:+.1f}%"


def _human_bytes(n: float) -> str:
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:,.0f} B"


def _png(fig) -> bytes:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _bar(
    labels: list[str],
    values: list[float],
    title: str,
    xlabel: str,
    highlight: frozenset[str] | set[str] = frozenset(),
) -> bytes:  # type: ignore[assignment]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 0.35 * max(len(labels), 3) + 1.0))
    colors = ["#d9480f" if lab in highlight else "#1c7ed6" for lab in labels]
    ax.barh(labels[::-1], values[::-1], color=colors[::-1])
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_xlabel(xlabel)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _line(days: list[dt.date], series: dict[str, list[float]], title: str, ylabel: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 2.6))
    for name, values in series.items():
        ax.plot(days, values, marker="o", label=name)  # type: ignore[arg-type]  # dates plot fine
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    fig.autofmt_xdate()
    return _png(fig)


def _frontier_chart(frontier: pl.DataFrame) -> bytes:
    """Mean RTT against monthly cost: the frontier's steps, each labelled with what it adds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 2.8))
    cost, rtt = frontier["cost_month_eur"].to_list(), frontier["mean_latency_ms"].to_list()
    ax.step(cost, rtt, where="post", color="#1c7ed6")
    ax.plot(cost, rtt, "o", color="#1c7ed6")
    before: list[str] = []
    for row in frontier.iter_rows(named=True):
        paid = [p for p in str(row["paid_sites"]).split(", ") if p]
        added = [p for p in paid if p not in before]
        ax.annotate("+" + ", ".join(added) if added else "", (row["cost_month_eur"], row["mean_latency_ms"]),
                    textcoords="offset points", xytext=(4, 4), fontsize=7)  # fmt: skip
        before = paid
    ax.set_title(
        "Mean RTT for the money: the latency-versus-cost frontier", fontsize=11, loc="left"
    )
    ax.set_xlabel("site cost, EUR per month")
    ax.set_ylabel("mean RTT, ms")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def build(
    wh_root: Path,
    week: str,
    checks: dict[str, int] | None = None,
    budget_tb: float = DEFAULT_EGRESS_BUDGET_TB,
    price_table: str | None = None,
    attributions: Sequence[str] = (),
) -> WeeklyReport:
    """Gathers the week's numbers (and the previous week's, for changes) and renders the report.

    `attributions` are the credit lines of the GeoIP databases in use (`GeoIP.attributions`),
    printed in the footer as their licences require."""
    start = iso_week_start(week)
    end = start + dt.timedelta(days=6)
    prev_start, prev_end = start - dt.timedelta(days=7), start - dt.timedelta(days=1)

    head = _q(wh_root, "report_headline", start, end).row(0, named=True)
    prev = _q(wh_root, "report_headline", prev_start, prev_end).row(0, named=True)
    if not head["requests"]:
        raise ValueError(f"no requests in {week} ({start} .. {end}): nothing to report")
    countries = _q(wh_root, "traffic_by_country", start, end, grain="week")
    arch = _q(wh_root, "traffic_by_arch", start, end)
    branches = _q(wh_root, "traffic_by_branch", start, end)
    adoption = _q(wh_root, "release_adoption", start, end, grain="week")
    pops = _q(wh_root, "cache_by_pop", start, end)
    hitters = _q(wh_root, "heavy_hitters", start, end, factor=20)
    daily = _q(wh_root, "egress_daily", start, end)
    quality = _q(wh_root, "report_quality", start, end).row(0, named=True)

    budget = decisions.budget_table(
        wh_root, budget_tb, today=end + dt.timedelta(days=1), price_table=price_table
    )
    try:  # the week's decision, as the mirror_placement asset stored it (or solved now)
        decision = decisions.weekly_placement(wh_root, start)
        placement_rows = decision.placement.filter(pl.col("k") <= REPORT_K_MAX)
        frontier = decision.frontier
    except ValueError as e:  # no located demand (no GeoIP database): say so, keep the report
        placement_rows = pl.DataFrame({"note": [str(e)]})
        frontier = pl.DataFrame()

    week_data = _Week(
        week, start, end, head, prev, countries, arch, branches, adoption, pops, hitters, daily,
        quality, budget, placement_rows, frontier,
    )  # fmt: skip
    return _assemble(week_data, checks, budget_tb, attributions)


def build_for(s: Settings, wh_root: Path, week: str) -> WeeklyReport:
    """`build` with what the settings give: the budget, the price table, and the credit lines of
    the GeoIP databases they select."""
    with GeoIP.from_settings(s) as geo:
        attributions = geo.attributions()
    return build(
        wh_root,
        week,
        budget_tb=s.egress_budget_tb,
        price_table=s.price_table,
        attributions=attributions,
    )


@dataclass(frozen=True)
class _Week:
    """What `build` gathered for one ISO week: the SQL results and the decision tables."""

    week: str
    start: dt.date
    end: dt.date
    head: dict[str, Any]  # report_headline, this week
    prev: dict[str, Any]  # report_headline, the week before
    countries: pl.DataFrame
    arch: pl.DataFrame
    branches: pl.DataFrame
    adoption: pl.DataFrame
    pops: pl.DataFrame
    hitters: pl.DataFrame
    daily: pl.DataFrame
    quality: dict[str, Any]
    budget: decisions.BudgetResult
    placement: pl.DataFrame
    frontier: pl.DataFrame  # the latency-versus-cost frontier; empty without located demand

    @property
    def continents(self) -> pl.DataFrame:
        return (
            self.countries.group_by(pl.col("continent").fill_null("unknown"))
            .agg(pl.col("requests").sum(), pl.col("bytes").sum())
            .sort("requests", descending=True)
        )

    @property
    def eol(self) -> pl.DataFrame:
        """This week's traffic to end-of-life branches."""
        return self.branches.filter(pl.col("status") == "end-of-life")


def _assemble(
    w: _Week, checks: dict[str, int] | None, budget_tb: float, attributions: Sequence[str]
) -> WeeklyReport:
    """The report of a gathered week: numbers, charts, the HTML and text, the CSV tables."""
    numbers = _numbers(w)
    context = {
        "week": w.week,
        "start": w.start,
        "end": w.end,
        "n": numbers,
        "hb": _human_bytes,
        "continents": w.continents.head(8).to_dicts(),
        "countries": w.countries.head(10).to_dicts(),
        "arch": w.arch.to_dicts(),
        "branches": w.branches.head(12).to_dicts(),
        "pops": w.pops.head(10).to_dicts(),
        "hitters": w.hitters.head(10).to_dicts(),
        "budget": w.budget,
        "mtd": w.budget.edge.mtd if w.budget.edge is not None else None,
        "budget_tb": budget_tb,
        "monthly": w.budget.edge.monthly.tail(8).to_dicts() if w.budget.edge is not None else [],
        "placement": w.placement.to_dicts(),
        "frontier": w.frontier.to_dicts(),
        "quality": w.quality,
        "checks": checks,
        "attributions": list(attributions),
        "clients_note": CLIENTS_NOTE,
    }
    html = _env().get_template("report.html.j2").render(**context)
    text = _env().get_template("report.txt.j2").render(**context)
    subject = (
        f"dl-cdn weekly traffic {w.week}: {w.head['requests']:,} requests, "
        f"{_human_bytes(w.head['bytes'] or 0)} ({numbers['bytes_change']})"
    )
    return WeeklyReport(w.week, subject, html, text, _charts(w), _tables(w), numbers)


def _numbers(w: _Week) -> dict[str, object]:
    """The headline figures, their change on the week before, and the CI and end-of-life shares."""
    head, prev = w.head, w.prev
    x86 = {r["arch"]: r for r in w.arch.iter_rows(named=True) if r["arch"] in ("x86", "x86_64")}
    eol_share = int(w.eol["requests"].sum()) / max(int(w.branches["requests"].sum()), 1)
    return {
        "requests": head["requests"],
        "bytes": head["bytes"],
        "clients": head["clients"],
        "origin_bytes": head["origin_bytes"],
        "requests_change": _change(head["requests"], prev["requests"] or 0),
        "bytes_change": _change(head["bytes"] or 0, prev["bytes"] or 0),
        "clients_change": _change(head["clients"], prev["clients"] or 0),
        "origin_change": _change(head["origin_bytes"] or 0, prev["origin_bytes"] or 0),
        "x86_share": float(x86["x86"]["request_share_pct"]) if "x86" in x86 else 0.0,
        "x86_64_share": float(x86["x86_64"]["request_share_pct"]) if "x86_64" in x86 else 0.0,
        "eol_share_pct": round(100 * eol_share, 2),
    }


def _charts(w: _Week) -> dict[str, bytes]:
    """The report's PNG charts, by the CID the HTML names them with."""
    continents, arch, adoption, pops, daily = w.continents, w.arch, w.adoption, w.pops, w.daily
    charts = {
        "continents": _bar(
            [str(c) for c in continents["continent"]],
            [r / 1e3 for r in continents["requests"]],
            "Requests by continent",
            "thousand requests",
        ),
        "arch": _bar(
            [str(a) for a in arch["arch"].fill_null("none")],
            list(arch["request_share_pct"]),
            "Request share by architecture (x86 and x86_64 in orange)",
            "% of requests",
            {"x86", "x86_64"},
        ),
        "branches": _bar(
            [str(b) for b in adoption["branch"].head(12)],
            list(adoption["share_pct"].head(12)),
            "APKINDEX checks by branch (live systems)",
            "% of index checks",
            {b for b in w.eol["branch"].to_list()},
        ),
        "pops": _bar(
            [str(p) for p in pops["pop"].fill_null("none").head(12)],
            [b / 1e9 for b in pops["origin_bytes"].fill_null(0).head(12)],
            "Origin (miss + pass) bytes by POP",
            "GB",
        ),
        "daily": _line(
            list(daily["date"]),
            {
                "edge": [b / TB for b in daily["bytes"]],
                "origin": [b / TB for b in daily["origin_bytes"]],
            },
            "Egress per day",
            "TB",
        ),
    }
    if w.frontier.height:
        charts["frontier"] = _frontier_chart(w.frontier)
    return charts


def _tables(w: _Week) -> dict[str, bytes]:
    """The CSV attachments, by file name."""
    tables = {
        f"{w.week}-countries.csv": w.countries.write_csv().encode(),
        f"{w.week}-arch.csv": w.arch.write_csv().encode(),
        f"{w.week}-branches.csv": w.branches.write_csv().encode(),
        f"{w.week}-pops.csv": w.pops.write_csv().encode(),
        f"{w.week}-heavy-hitters.csv": w.hitters.write_csv().encode(),
    }
    if w.frontier.height:
        tables[f"{w.week}-placement-frontier.csv"] = w.frontier.write_csv().encode()
    return tables


def _env():  # type: ignore[no-untyped-def]
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def to_email(
    report: WeeklyReport, sender: str | None = None, recipients: tuple[str, ...] = ()
) -> EmailMessage:
    """multipart/mixed: (text | html with related CID PNGs) alternative, then CSV attachments."""
    msg = EmailMessage()
    msg["Subject"] = report.subject
    if sender:
        msg["From"] = sender
    if recipients:
        msg["To"] = ", ".join(recipients)
    msg["Message-ID"] = make_msgid(domain="dlcdn.local")
    msg.set_content(report.text)
    msg.add_alternative(report.html, subtype="html")
    html_part = msg.get_payload()[1]  # type: ignore[index]
    for cid, png in report.images.items():
        html_part.add_related(  # type: ignore[union-attr]  # the html alternative is an EmailMessage
            png, maintype="image", subtype="png", cid=f"<{cid}>", filename=f"{cid}.png"
        )
    for name, data in report.attachments.items():
        msg.add_attachment(data, maintype="text", subtype="csv", filename=name)
    return msg


def write(report: WeeklyReport, folder: Path) -> Path:
    """Writes report.html (CIDs pointing at the PNGs beside it), report.txt, PNGs and CSVs."""
    html = report.html
    for cid, png in report.images.items():
        files.atomic_write_bytes(folder / f"{cid}.png", png)
        html = html.replace(f"cid:{cid}", f"{cid}.png")
    for name, data in report.attachments.items():
        files.atomic_write_bytes(folder / name, data)
    files.atomic_write_text(folder / "report.txt", report.text)
    # Last: the page appears once everything it points at is there.
    files.atomic_write_text(folder / "report.html", html)
    return folder / "report.html"
