"""`dlcdn publish` and the weekly public_dataset asset: the k-anonymous tables of a range of ISO
weeks as a Frictionless Data Package (datapackage.json, each table as CSV and Parquet, the
suppression accounting, and a data sheet README.md), validated before it replaces the folder.

The package layout (docs/publish.md):

    datapackage.json           every resource and field, licence, sources, k, the range
    README.md                  the data sheet
    data/<table>.csv|.parquet  one pair per table of pipeline.publish.tables, plus suppression
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from pipeline import dates, files
from pipeline.publish import anonymity
from pipeline.publish.tables import OTHER, TABLES, UNKNOWN, PublicTable
from pipeline.warehouse import queries, rollups
from pipeline.warehouse.store import Warehouse

DEFAULT_K = 10
NAME = "alpine-dl-cdn-downloads"
# CC BY 4.0: the place columns derive from DB-IP's CC BY 4.0 data, whose attribution travels
# with them; one licence for the whole package keeps reuse simple.
LICENSE = {
    "name": "CC-BY-4.0",
    "title": "Creative Commons Attribution 4.0 International",
    "path": "https://creativecommons.org/licenses/by/4.0/",
}
SUPPRESSION = PublicTable(
    "suppression",
    "Suppression accounting",
    "Per table and period: rows published, folded into an other row and dropped, and the "
    "dropped requests and bytes against the warehouse's totals (published + dropped = total).",
    "period",
    {"table": "the table (a resource of this package)"},
    {},
)
# Columns that identify or locate a client: never in a published table (held by a test too).
NEVER_PUBLISHED = (
    "client_id",
    "client_net",
    "client_ip",
    "asn",
    "as_org",
    "latitude",
    "longitude",
    "user_agent",
    "client_sketch",
)


class PublishError(ValueError):
    """The package cannot be written as asked (range, k, output folder); the message says why."""


@dataclass(frozen=True)
class Published:
    """What `publish` wrote: the folder, the range, k, each table's rows and accounting."""

    out: Path
    start: dt.date
    end: dt.date
    k: int
    tables: list[anonymity.Anonymised]
    seconds: float
    geoip: list[dict[str, object]] = field(default_factory=list)

    @property
    def accounting(self) -> pl.DataFrame:
        return pl.concat([t.accounting for t in self.tables])

    def summary(self) -> pl.DataFrame:
        """Per table over the range: rows published (other rows among them), folded and dropped,
        dropped and total requests and bytes, and the dropped share of requests."""
        return _per_table(self.accounting).with_columns(
            dropped_pct=(100 * pl.col("requests_dropped") / pl.col("requests_total")).round(3)
        )


def _per_table(accounting: pl.DataFrame) -> pl.DataFrame:
    """The accounting summed over periods, per table."""
    return accounting.group_by("table", maintain_order=True).agg(
        pl.exclude("table", "period").sum()
    )


def week_range(
    wh: Warehouse, start: dt.date | None, end: dt.date | None, today: dt.date | None = None
) -> tuple[dt.date, dt.date]:
    """The whole ISO weeks to publish: `start` back to its Monday, `end` on to its Sunday. By
    default from the first day with data to the last one, but never a week that has not ended
    (its data would be partial)."""
    if start and end and start > end:
        raise PublishError(f"the start {start} is after the end {end}")
    today = today or dates.today_utc()
    last_ended = dates.week_start(today) - dt.timedelta(days=1)
    monday = dates.week_start(start) if start else dt.date.min
    sunday = dates.week_start(end) + dt.timedelta(days=6) if end else dt.date.max
    days = rollups.days_in(wh, monday, sunday)
    if not days:
        raise PublishError(
            f"no requests in the warehouse {wh.root}"
            + (f" in the weeks of {start or '...'} to {end or '...'}" if start or end else "")
        )
    first = dates.week_start(start or days[0])
    last = dates.week_start(end or min(days[-1], last_ended)) + dt.timedelta(days=6)
    if last > last_ended:
        raise PublishError(
            f"the ISO week {dates.iso_week(last)} has not ended (it ends {last}): publish ended "
            "weeks only"
        )
    if first > last:
        raise PublishError(
            f"no ended ISO week with data between {first} and {last} (the last with data ends "
            f"{dates.week_start(days[-1]) + dt.timedelta(days=6)}, today is {today})"
        )
    return first, last


def publish(
    wh: Warehouse,
    out: Path,
    start: dt.date | None = None,
    end: dt.date | None = None,
    k: int = DEFAULT_K,
    *,
    force: bool = False,
    geoip: list[dict[str, object]] | None = None,
    progress: Callable[[str], None] | None = None,
    today: dt.date | None = None,
) -> Published:
    """Writes the package for the ISO weeks of start..end (`week_range`) at threshold `k` into
    `out`, validated, replacing the folder whole at the end.

    `out` must be missing or empty; with `force`, a folder holding a previous package (a
    datapackage.json) is replaced, never any other. `geoip` is `GeoIP.describe()` of the
    databases in use, for the data sheet and the sources.
    """
    began = time.monotonic()
    out = Path(out).absolute()  # its parent holds the temporary folder, even for `--out .`
    if k < 2:
        raise PublishError(f"k = {k}: k-anonymity needs k >= 2 (a row of 1 client singles it out)")
    _check_out(out, force)
    first, last = week_range(wh, start, end, today)
    days = [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    say = progress or (lambda _: None)
    built: list[anonymity.Anonymised] = []
    with queries.connect(wh.root, scope={"requests": days}) as con:
        [(n,)] = con.sql("SELECT count(*) FROM requests").fetchall()
        if not n:
            raise PublishError(f"no requests between {first} and {last}")
        for t in TABLES:
            t0 = time.monotonic()
            built.append(anonymity.anonymise(con, t, first, last, k))
            say(f"{t.name}: {built[-1].rows.height:,} rows ({time.monotonic() - t0:.1f} s)")
        sources = con.sql(
            "SELECT source, count(*) AS requests, count(DISTINCT file_id) AS files "
            "FROM requests GROUP BY ALL ORDER BY requests DESC"
        ).pl()
    result = Published(out, first, last, k, built, 0.0, geoip or [])
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
    try:
        _write(result, tmp, sources)
        report = validate(tmp)
        if not report.valid:
            raise PublishError(f"the package does not validate: {errors(report)[0]}")
        _replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say(f"validated and written to {out}")
    return Published(out, first, last, k, built, time.monotonic() - began, geoip or [])


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise PublishError(f"{out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise PublishError(f"{out} is not empty: give --force to replace the package there")
        if not (out / "datapackage.json").is_file():
            raise PublishError(
                f"{out} is not empty and holds no datapackage.json: not replaced, even with "
                "--force (choose an empty or new folder)"
            )


def _replace(tmp: Path, out: Path) -> None:
    """Puts the finished folder at `out`; a previous package there goes whole."""
    old = out.with_name(f".{out.name}.{uuid.uuid4().hex}.old")
    if out.exists():
        out.rename(old)
    files.move(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def _write(p: Published, folder: Path, sources: pl.DataFrame) -> None:
    """The data files, datapackage.json and README.md of `p` into `folder` (new)."""
    data = folder / "data"
    data.mkdir(parents=True)
    resources: list[dict[str, Any]] = []
    frames = [(t.table, t.rows) for t in p.tables] + [(SUPPRESSION, p.accounting)]
    for table, frame in frames:
        frame.write_csv(data / f"{table.name}.csv")
        frame.write_parquet(data / f"{table.name}.parquet", compression="zstd")
        for fmt in ("csv", "parquet"):
            resources.append(_resource(table, folder, f"data/{table.name}.{fmt}", fmt, p.k))
    descriptor = _descriptor(p, resources, sources)
    (folder / "datapackage.json").write_text(json.dumps(descriptor, indent=2) + "\n")
    (folder / "README.md").write_text(datasheet(p, sources))


def _fields(table: PublicTable, k: int) -> list[dict[str, Any]]:
    if table is SUPPRESSION:
        out: list[dict[str, Any]] = []
        for name, meaning in anonymity.ACCOUNTING_COLUMNS.items():
            f: dict[str, Any] = {"name": name, "description": meaning}
            if name in ("table", "period"):
                f |= {"type": "string", "constraints": {"required": True}}
            else:
                f |= {"type": "integer", "constraints": {"required": True, "minimum": 0}}
            out.append(f)
        return out
    fields: list[dict[str, Any]] = []
    for name, meaning in table.columns.items():
        f = {"name": name, "description": meaning, "constraints": {"required": True}}
        if name == "date":
            f["type"] = "date"
        elif name == "week":
            f |= {"type": "string", "constraints": {"required": True, "pattern": r"\d{4}-W\d{2}"}}
        elif name == "clients":
            f |= {"type": "integer", "constraints": {"required": True, "minimum": k}}
        elif name in table.measures:
            f |= {"type": "integer", "constraints": {"required": True, "minimum": 0}}
        else:
            f["type"] = "string"
        fields.append(f)
    return fields


def _resource(table: PublicTable, folder: Path, path: str, fmt: str, k: int) -> dict[str, Any]:
    body = (folder / path).read_bytes()
    keys = ["table", "period"] if table is SUPPRESSION else table.keys
    resource: dict[str, Any] = {
        "name": table.name if fmt == "csv" else f"{table.name}-parquet",
        "title": f"{table.title} ({fmt.upper() if fmt == 'csv' else 'Parquet'})",
        "description": table.description,
        "path": path,
        "format": fmt,
        "mediatype": "text/csv" if fmt == "csv" else "application/vnd.apache.parquet",
        "schema": {"fields": _fields(table, k), "primaryKey": keys},
    }
    if fmt == "csv":
        # Size and checksum: frictionless checks them on CSV (it reads Parquet through pyarrow,
        # not as bytes, and would report them missing).
        resource |= {
            "encoding": "utf-8",
            "bytes": len(body),
            "hash": f"sha256:{hashlib.sha256(body).hexdigest()}",
        }
    return resource


def _descriptor(
    p: Published, resources: list[dict[str, Any]], sources: pl.DataFrame
) -> dict[str, Any]:
    srcs: list[dict[str, str]] = [
        {
            "title": f"dl-cdn.alpinelinux.org access logs, source '{s}' "
            f"({n:,} requests in {f:,} log files)",
        }
        for s, n, f in sources.iter_rows()
    ]
    for d in p.geoip:
        srcs.append(
            {
                "title": f"GeoIP: {d['database_type']} built {_day(d['build_date'])}"
                + (f" ({d['attribution']})" if d.get("attribution") else ""),
            }
        )
    srcs.append(
        {
            "title": "Alpine Linux branch calendar (release and end-of-support dates), as shipped "
            "with dlcdn (pipeline/data/alpine_branches.csv)"
        }
    )
    return {
        "name": NAME,
        "title": "Alpine Linux downloads from dl-cdn.alpinelinux.org, k-anonymous",
        "description": f"Weekly and daily download statistics of Alpine Linux, "
        f"{dates.iso_week(p.start)} to {dates.iso_week(p.end)}: every row has at least "
        f"k = {p.k} distinct clients. The data sheet is README.md.",
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "licenses": [LICENSE],
        "sources": srcs,
        "keywords": ["alpine-linux", "downloads", "cdn", "k-anonymity"],
        "homepage": "https://dl-cdn.alpinelinux.org",
        "contributors": [{"title": "dlcdn " + _version(), "role": "author"}],
        # Not in the Data Package standard (custom properties are allowed): the privacy rule.
        "k_anonymity": {
            "k": p.k,
            "other": OTHER,
            "unknown": UNKNOWN,
            # Per table, over the whole range; per period: the suppression resource.
            "suppressed": {
                r["table"]: {
                    c: r[c]
                    for c in (
                        "rows_folded",
                        "rows_dropped",
                        "requests_dropped",
                        "bytes_dropped",
                        "requests_total",
                        "bytes_total",
                    )
                }
                for r in _per_table(p.accounting).iter_rows(named=True)
            },
        },
        "temporal": {"start": p.start.isoformat(), "end": p.end.isoformat()},
        "resources": resources,
    }


def _day(value: object) -> str:
    return value.date().isoformat() if isinstance(value, dt.datetime) else str(value)


def _version() -> str:
    try:
        return metadata.version("dlcdn")
    except metadata.PackageNotFoundError:
        return "(source tree)"


def datasheet(p: Published, sources: pl.DataFrame) -> str:
    """The package's README.md: what the data is and is not, definitions, biases, k, licence."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.publish", "templates"),
        autoescape=False,  # Markdown, not HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("README.md.j2").render(
        p=p,
        first_week=dates.iso_week(p.start),
        last_week=dates.iso_week(p.end),
        tables=[t.table for t in p.tables],
        suppression=SUPPRESSION,
        accounting_columns=anonymity.ACCOUNTING_COLUMNS,
        summary=p.summary().iter_rows(named=True),
        sources=sources.iter_rows(named=True),
        geoip=[{**d, "built": _day(d["build_date"])} for d in p.geoip],
        license=LICENSE,
        other=OTHER,
        unknown=UNKNOWN,
        never=NEVER_PUBLISHED,
        created=dt.datetime.now(dt.UTC).date(),
        version=_version(),
    )


def validate(folder: Path) -> Any:
    """The frictionless report on the package in `folder`: schema, types, constraints (k among
    them), primary keys, sizes and hashes of every resource."""
    import frictionless

    return frictionless.validate(str(folder / "datapackage.json"))


def errors(report: Any, limit: int = 20) -> list[str]:
    """The first `limit` errors of a frictionless report, one line each."""
    lines = [
        f"{task.name}: {e.type} {getattr(e, 'row_number', '') or ''} {e.note}".replace("  ", " ")
        for task in report.tasks
        for e in task.errors
    ]
    lines += [f"package: {e.type} {e.note}" for e in report.errors]
    return lines[:limit]


def package_k(folder: Path) -> int:
    """The k a package in `folder` was written with (datapackage.json)."""
    descriptor: Mapping[str, Any] = json.loads((folder / "datapackage.json").read_text())
    return int(descriptor["k_anonymity"]["k"])
