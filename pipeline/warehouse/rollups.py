"""Rollups: per-day aggregate tables that the questions in sql/, the report, budget and placement
read instead of raw `requests`, so that an answer costs the same at any traffic volume.

Each rollup is one statement (`sql/rollups/<name>.sql`, parameter `$day`) run over one day of
requests and written atomically to `<warehouse>/<name>/date=YYYY-MM-DD/part.parquet`; the view of
the same name in warehouse.duckdb reads them. A rollup's rows are its cells (one per distinct
combination of its dimensions that day), so its size depends on the number of distinct dimension
values, never on the number of requests. Every rollup holds every request of its day once: the
sums of `requests` and `bytes` per day are the same in each, and equal the raw day's.

Unique clients are a sketch per cell (`client_sketch`: the SKETCH_K smallest distinct `client_id`
values, a "k minimum values" sketch); the macros below merge and count them. What the number
means, and why this sketch: docs/rollups.md, "Unique clients".
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.schema import REQUESTS, Table, register
from pipeline.warehouse.store import Warehouse, atomic_write_parquet

# The sketch keeps this many smallest client_id values per cell and day. Below it a count is
# exact; above it the estimate's relative standard error is 1/sqrt(k - 2), 3.1%. A merge costs
# time in proportion to the values merged, and at Alpine's traffic most cells fill their sketch
# every day: a larger k buys accuracy with time (docs/rollups.md, "Unique clients").
SKETCH_K = 1024
PART = "part.parquet"

_MEASURES: dict[str, str] = {
    "requests": "requests",
    "bytes": "response body bytes sent",
    "ok": "requests answered 200 OK",
    "not_modified": "requests answered 304 Not Modified (on an APKINDEX: a live system checking in)",
    "client_errors": "requests answered 4xx",
    "server_errors": "requests answered 5xx",
    "cache_requests": "requests with a CDN cache state (Fastly lines; mirror logs have none)",
    "hits": "requests the CDN served from cache (cache state HIT, HIT-STALE, HIT-CLUSTER, ...)",
    "origin_requests": "requests the CDN fetched from the origin (cache state MISS or PASS, "
    "with their -CLUSTER variants)",
    "origin_bytes": "bytes of those origin requests: the load the T1 mirrors carry",
}
_SKETCH = (
    "the smallest distinct client_id values of the cell that day, at most "
    f"{SKETCH_K:,} (all of them when fewer): merge and count with distinct_clients(client_sketch); "
    "never add up client counts. Pseudonymous client hashes: do not publish this column"
)
_DATE = "the UTC day (also the partition key)"


def _rollup(
    name: str, row: str, dims: dict[str, str], extra: Mapping[str, tuple[pl.DataType, str]]
) -> Table:
    """Declares and registers one rollup: `date`, its dimensions (dtypes as in `requests`), the
    shared measures, then its own columns."""
    schema: dict[str, pl.DataType] = {"date": pl.Date()}
    columns = {"date": _DATE}
    for col, meaning in dims.items():
        schema[col] = REQUESTS[col]
        columns[col] = meaning
    for col, meaning in _MEASURES.items():
        schema[col] = pl.Int64()
        columns[col] = meaning
    for col, (dtype, meaning) in extra.items():
        schema[col] = dtype
        columns[col] = meaning
    return register(Table(name, pl.Schema(schema), row, columns, partition_key="date"))


_CLIENTS = {"client_sketch": (pl.List(pl.Int64()), _SKETCH)}

# In the order the docs list them.
ROLLUPS: tuple[Table, ...] = (
    _rollup(
        "rollup_day",
        "one day's requests from one log source: the day's totals",
        {"source": "log source (fastly, mirror, or the name given at ingest)"},
        _CLIENTS,
    ),
    _rollup(
        "rollup_place",
        "one day's requests from one place, by log source",
        {
            "source": "log source (fastly, mirror, or the name given at ingest)",
            "continent": "client continent, 2-letter code (NULL: not located)",
            "subregion": "client UN M49 sub-region (NULL: not located)",
            "country": "client country, ISO alpha-2 (NULL: not located)",
        },
        _CLIENTS,
    ),
    _rollup(
        "rollup_asn",
        "one day's requests from one network operator",
        {
            "asn": "client autonomous system number (NULL: no ASN database, or not found)",
            "as_org": "the autonomous system's organisation",
        },
        _CLIENTS,
    ),
    _rollup(
        "rollup_client_kind",
        "one day's requests from one kind of client",
        {
            "client_kind": "apk, curl, wget, busybox-wget, buildkit, browser, crawler, ... (from the User-Agent)"
        },
        _CLIENTS,
    ),
    _rollup(
        "rollup_client_net",
        "one day's requests from one client network: for heavy hitters",
        {
            "client_net": "client network, the /24 (IPv4) or /48 (IPv6) prefix",
            "country": "client country, ISO alpha-2",
        },
        {
            "distinct_paths": (
                pl.Int64(),
                "distinct paths the network requested that day (does not add up across days)",
            )
        },
    ),
    _rollup(
        "rollup_content",
        "one day's requests for one architecture, branch, repository and file kind",
        {
            "arch": "architecture in the path (NULL: outside the tree)",
            "branch_resolved": "branch, latest-stable resolved to the branch it meant that day; "
            "supported or end-of-life: branch_status(branch_resolved, date)",
            "repo": "repository: main, community, testing, releases, backports",
            "file_kind": "apkindex, package, release, checksum, signature, ... (SPEC.md)",
        },
        {},
    ),
    _rollup(
        "rollup_cdn",
        "one day's requests through one Fastly POP with one cache state",
        {
            "pop": "Fastly POP (NULL: mirror logs)",
            "cache_state": "Fastly cache state: HIT, MISS, PASS, HIT-STALE, ...-CLUSTER (NULL: mirror logs)",
        },
        {},
    ),
    _rollup(
        "rollup_location",
        "one day's requests from one 1-degree cell of client locations: placement demand",
        {
            "latitude": "client latitude rounded to a whole degree (NULL: not located)",
            "longitude": "client longitude rounded to a whole degree (NULL: not located)",
        },
        {},
    ),
    _rollup(
        "rollup_packages",
        "one day's requests for one package version (other file kinds: one row each, package NULL)",
        {
            "file_kind": "file kind; package for .apk files",
            "package": "package name",
            "package_version": "package version with its -rN release",
        },
        {},
    ),
    _rollup(
        "rollup_releases",
        "one day's requests for one release artefact (other files: one row per file kind and arch)",
        {
            "file_kind": "release, netboot, cloud_image, checksum, signature, ...",
            "release_flavor": "standard, extended, virt, minirootfs, netboot, ...",
            "release_version": "release version (3.22.2)",
            "arch": "architecture",
        },
        {},
    ),
)
NAMES = tuple(t.name for t in ROLLUPS)


def macro_statements(k: int = SKETCH_K) -> list[str]:
    """The sketch macros (docs/rollups.md, "Unique clients"): `sketch_clients(client_id)` builds a
    cell's sketch from distinct ids, `merge_sketches(client_sketch)` unions sketches (both
    aggregates), `sketch_estimate(sketch)` counts one, `distinct_clients(client_sketch)` both."""
    # KMV: with the k smallest of n distinct uniform 64-bit hashes, (k - 1) / u_k estimates n,
    # u_k the k-th smallest as a fraction of the hash range (client_id is a keyed BLAKE2b hash).
    return [
        f"CREATE OR REPLACE MACRO sketch_clients(id) AS min(id, {k})",
        "CREATE OR REPLACE MACRO merge_sketches(s) AS "
        f"list_sort(list_distinct(flatten(list(s))))[1:{k}]",
        "CREATE OR REPLACE MACRO sketch_estimate(s) AS CASE "
        f"WHEN s IS NULL THEN 0 WHEN len(s) < {k} THEN len(s) "
        f"ELSE CAST(round({k - 1} / ((CAST(s[{k}] AS DOUBLE) + 9223372036854775809.0) "
        "/ 18446744073709551616.0)) AS BIGINT) END",
        "CREATE OR REPLACE MACRO distinct_clients(s) AS sketch_estimate(merge_sketches(s))",
    ]


def view_statements(wh: Warehouse) -> list[str]:
    """A view per rollup over its day files (a typed empty view before its first day), and the
    sketch macros."""
    from pipeline.warehouse.store import _empty_select

    root = str(wh.root).replace("'", "''")
    stmts = macro_statements()
    for t in ROLLUPS:
        if any((wh.root / t.name).glob(f"date=*/{PART}")):
            body = wh.table_source(t.name, f"'{root}/{t.name}/date=*/{PART}'")
        else:
            body = _empty_select(t.schema)
        stmts.append(f"CREATE OR REPLACE VIEW {t.name} AS {body}")
    return stmts


@dataclass(frozen=True)
class DayBuilt:
    """What rebuilding one day's rollups produced: rows (cells) and file bytes per rollup, and
    the day's requests and bytes (the same in every rollup)."""

    day: dt.date
    rows: dict[str, int]
    file_bytes: dict[str, int]
    requests: int
    bytes: int


def build_day(wh: Warehouse, day: dt.date) -> DayBuilt:
    """Replaces every rollup's partition of `day` with what `sql/rollups/<name>.sql` computes from
    that day's requests (each file atomically; a day without requests gets empty files)."""
    from pipeline.warehouse import queries

    day_s = day.isoformat()
    frames: dict[str, pl.DataFrame] = {}
    for t in ROLLUPS:
        frame = queries.run(
            wh.root,
            queries.sql_file(f"rollups/{t.name}"),
            {"day": day_s},
            scope={"requests": [day_s]},
        )
        if frame.columns != list(t.schema):
            raise ValueError(
                f"sql/rollups/{t.name}.sql returns {frame.columns}, its schema is {list(t.schema)}"
            )
        frames[t.name] = frame.cast(dict(t.schema))  # type: ignore[arg-type]
    sizes: dict[str, int] = {}
    with wh.lock():
        for name, frame in frames.items():
            sizes[name] = _write_partition(wh, name, day_s, frame)
        wh.refresh_views()
    first = frames[ROLLUPS[0].name]
    return DayBuilt(
        day,
        {n: f.height for n, f in frames.items()},
        sizes,
        int(first["requests"].sum()),
        int(first["bytes"].sum()),
    )


def _write_partition(wh: Warehouse, table: str, day: str, frame: pl.DataFrame) -> int:
    """Writes one day of a rollup atomically; returns its size. Callers hold the lock."""
    dest = wh.root / table / f"date={day}" / PART
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Days written by an older version of a rollup's SQL may lack a column: the view then
    # matches columns by name (see store.MIXED_SCHEMA_MARKER).
    other = next((p for p in (wh.root / table).glob(f"date=*/{PART}") if p != dest), None)
    if other is not None and pl.read_parquet_schema(other) != frame.schema:
        wh.mark_mixed_schema(table)
    atomic_write_parquet(frame, dest)
    return dest.stat().st_size


def build_days(
    wh: Warehouse, days: Iterable[dt.date], progress: Callable[[DayBuilt], None] | None = None
) -> list[DayBuilt]:
    """Rebuilds the rollups of each day, in date order: the daily asset, `dlcdn ingest` (the days
    it touched) and `dlcdn rollup` all go through here."""
    built = []
    for day in sorted(set(days)):
        b = build_day(wh, day)
        built.append(b)
        if progress is not None:
            progress(b)
    return built


def mismatches(wh: Warehouse, day: dt.date) -> list[str]:
    """The rollups whose requests or bytes of `day` differ from the day's raw requests (none
    when the day's rollups are current): what the daily asset's check asserts."""
    from pipeline.warehouse import queries

    where = "WHERE date = CAST($day AS DATE)"
    # One statement over the registry's tables: they share the measures, so it needs no file.
    text = " UNION ALL ".join(
        [
            f"SELECT 'requests' AS t, count(*) AS n, coalesce(sum(bytes), 0) AS b FROM requests {where}"
        ]
        + [
            f"SELECT '{t}', coalesce(sum(requests), 0), coalesce(sum(bytes), 0) FROM {t} {where}"
            for t in NAMES
        ]
    )
    rows = queries.run(wh.root, text, {"day": day.isoformat()}, {"requests": [day.isoformat()]})
    raw = rows.filter(pl.col("t") == "requests").row(0)
    return [
        f"{t}: {n:,} requests, {b:,} bytes; requests has {raw[1]:,} and {raw[2]:,}"
        for t, n, b in rows.filter(pl.col("t") != "requests").iter_rows()
        if (n, b) != raw[1:]
    ]


def stale_days(wh: Warehouse) -> list[dt.date]:
    """Days whose rollups are missing, or older than the newest ingest that wrote rows to them."""
    manifest = wh.current_manifest()
    if manifest.is_empty():
        return []
    newest = (
        manifest.select("dates", "ingested_at")
        .explode("dates")
        .drop_nulls("dates")
        .group_by("dates")
        .agg(pl.col("ingested_at").max())
    )
    stale = []
    for day, ingested_at in newest.sort("dates").iter_rows():
        stamp = ingested_at.timestamp()
        for name in NAMES:
            path = wh.root / name / f"date={day.isoformat()}" / PART
            if not path.exists() or os.stat(path).st_mtime < stamp:
                stale.append(day)
                break
    return stale


def days_in(wh: Warehouse, start: dt.date, end: dt.date) -> list[dt.date]:
    """The days between start and end (inclusive) that hold ingested rows or built rollups."""
    manifest = wh.current_manifest()
    days = {d for ds in manifest["dates"].to_list() for d in ds or []}
    for name in NAMES:
        for part in (wh.root / name).glob("date=*"):
            days.add(dt.date.fromisoformat(part.name.removeprefix("date=")))
    return sorted(d for d in days if start <= d <= end)


def total_size(wh: Warehouse, table: str) -> int:
    """Bytes on disk of a table's Parquet files (a rollup, or `requests`)."""
    return sum(p.stat().st_size for p in Path(wh.root / table).glob("date=*/*.parquet"))
