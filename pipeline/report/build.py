"""The weekly traffic report: HTML (inline CSS, CID charts), plain text and CSV attachments.

Every number comes from a named SQL file in sql/ (or the budget and placement models built on
them); the charts are static PNGs drawn with matplotlib. `build` gathers and renders; `to_email`
turns the result into one multipart message; `write` leaves the files next to the warehouse.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import polars as pl

from pipeline import files
from pipeline.dates import iso_week_start
from pipeline.decisions import tables as decisions
from pipeline.warehouse import queries

ATTRIBUTION = "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0"
TB = 1e12


@dataclass
class Report:
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


def build(
    wh_root: Path,
    week: str,
    checks: dict[str, int] | None = None,
    budget_tb: float = 800.0,
    price_table: str | None = None,
) -> Report:
    """Gathers the week's numbers (and the previous week's, for changes) and renders the report."""
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

    budget = decisions.budget_report(
        wh_root, budget_tb, today=end + dt.timedelta(days=1), price_table=price_table
    )
    try:
        placement = decisions.placement_report(
            wh_root, end - dt.timedelta(days=27), end, "client", 3
        )
        placement_rows = placement.frame()
    except ValueError as e:  # no located demand (no GeoIP database): say so, keep the report
        placement_rows = pl.DataFrame({"note": [str(e)]})

    continents = (
        countries.group_by(pl.col("continent").fill_null("unknown"))
        .agg(pl.col("requests").sum(), pl.col("bytes").sum())
        .sort("requests", descending=True)
    )
    x86 = {r["arch"]: r for r in arch.iter_rows(named=True) if r["arch"] in ("x86", "x86_64")}
    eol = branches.filter(pl.col("status") == "end-of-life")
    eol_share = int(eol["requests"].sum()) / max(int(branches["requests"].sum()), 1)

    images = {
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
            {b for b in eol["branch"].to_list()},
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
    mtd = budget.edge.mtd if budget.edge is not None else None
    numbers: dict[str, object] = {
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
    context = {
        "week": week,
        "start": start,
        "end": end,
        "n": numbers,
        "hb": _human_bytes,
        "continents": continents.head(8).to_dicts(),
        "countries": countries.head(10).to_dicts(),
        "arch": arch.to_dicts(),
        "branches": branches.head(12).to_dicts(),
        "pops": pops.head(10).to_dicts(),
        "hitters": hitters.head(10).to_dicts(),
        "budget": budget,
        "mtd": mtd,
        "budget_tb": budget_tb,
        "monthly": budget.edge.monthly.tail(8).to_dicts() if budget.edge is not None else [],
        "placement": placement_rows.to_dicts(),
        "quality": quality,
        "checks": checks,
        "attribution": ATTRIBUTION,
    }
    html = _env().get_template("report.html.j2").render(**context)
    text = _env().get_template("report.txt.j2").render(**context)
    attachments = {
        f"{week}-countries.csv": countries.write_csv().encode(),
        f"{week}-arch.csv": arch.write_csv().encode(),
        f"{week}-branches.csv": branches.write_csv().encode(),
        f"{week}-pops.csv": pops.write_csv().encode(),
        f"{week}-heavy-hitters.csv": hitters.write_csv().encode(),
    }
    subject = (
        f"dl-cdn weekly traffic {week}: {head['requests']:,} requests, "
        f"{_human_bytes(head['bytes'] or 0)} ({numbers['bytes_change']})"
    )
    return Report(week, subject, html, text, images, attachments, numbers)


def _env():  # type: ignore[no-untyped-def]
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def to_email(
    report: Report, sender: str | None = None, recipients: tuple[str, ...] = ()
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


def write(report: Report, folder: Path) -> Path:
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
