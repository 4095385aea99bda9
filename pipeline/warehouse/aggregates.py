"""Aggregate tables built from the warehouse by the SQL in `sql/`, one Parquet file per partition.

Each aggregate is one statement (`sql/<name>.sql`) run for one partition (a day, an ISO week) and
written atomically to `<warehouse>/<name>/<key>=<value>/part.parquet`; re-running a partition
replaces it whole. The views of the same name read them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline import dates
from pipeline.faults import crash_point
from pipeline.files import atomic_write_parquet, remove_temporaries
from pipeline.schema import REQUESTS, Table, register
from pipeline.warehouse import queries
from pipeline.warehouse.store import AGGREGATES, Warehouse

# What `sql/daily_traffic.sql` returns (tests/test_warehouse_docs.py holds the two equal).
DAILY_TRAFFIC = pl.Schema(
    {
        "date": pl.Date,
        "source": pl.String,
        "continent": pl.String,
        "subregion": pl.String,
        "country": pl.String,
        "arch": pl.String,
        "branch_resolved": pl.String,
        "branch_status": pl.String,
        "repo": pl.String,
        "file_kind": pl.String,
        "client_kind": pl.String,
        "pop": pl.String,
        "cache_state": pl.String,
        "requests": pl.Int64,
        "bytes": pl.Int64,
        "not_modified": pl.Int64,
        "client_errors": pl.Int64,
        "server_errors": pl.Int64,
        "clients": pl.Int64,
    }
)
# What `sql/weekly_traffic.sql` returns.
WEEKLY_TRAFFIC = pl.Schema(
    {
        "week_start": pl.Date,
        "source": pl.String,
        "continent": pl.String,
        "country": pl.String,
        "arch": pl.String,
        "branch_resolved": pl.String,
        "branch_status": pl.String,
        "repo": pl.String,
        "file_kind": pl.String,
        "client_kind": pl.String,
        "requests": pl.Int64,
        "bytes": pl.Int64,
        "not_modified": pl.Int64,
    }
)

_STATUS = (
    "Whether `branch_resolved` was supported on the day: `supported`, `end-of-life` or `unknown` "
    "(the `branch_status` macro over the branch calendar); NULL without a branch."
)


def _meanings(schema: pl.Schema, own: dict[str, str]) -> dict[str, str]:
    """Column meanings in the schema's order: `own`, else the `requests` column it groups by."""
    return {
        c: own.get(c, "As in `requests`; NULL is a group of its own." if c in REQUESTS else "")
        for c in schema
    }


register(
    Table(
        "daily_traffic",
        DAILY_TRAFFIC,
        row="One UTC day's requests for one combination of the dimensions below "
        "(`sql/daily_traffic.sql`, built by the `daily_traffic` asset).",
        columns=_meanings(
            DAILY_TRAFFIC,
            {
                "date": "The UTC day; the partition.",
                "branch_status": _STATUS,
                "requests": "Requests in the group.",
                "bytes": "Response bytes in the group.",
                "not_modified": "Responses with status 304 (an apk index check by a live system).",
                "client_errors": "Responses with status 400-499.",
                "server_errors": "Responses with status 500 and above.",
                "clients": "Approximate distinct `client_id` in the group (HyperLogLog): it does "
                "not add up across groups.",
            },
        ),
    )
)
register(
    Table(
        "weekly_traffic",
        WEEKLY_TRAFFIC,
        row="One ISO week's (Monday to Sunday, UTC) requests for one combination of the "
        "dimensions below, summed from `daily_traffic` (`sql/weekly_traffic.sql`, built by the "
        "`weekly_traffic` asset; the base of the weekly report).",
        columns=_meanings(
            WEEKLY_TRAFFIC,
            {
                "week_start": "The Monday that starts the ISO week.",
                "branch_status": _STATUS + " A branch that ended mid-week has rows of both.",
                "requests": "Requests in the group.",
                "bytes": "Response bytes in the group.",
                "not_modified": "Responses with status 304.",
            },
        ),
        partition_key="week",
    )
)


@dataclass(frozen=True)
class Built:
    """What building one partition of an aggregate produced."""

    table: str
    partition: str
    path: Path
    rows: int
    requests: int
    bytes: int
    preview: pl.DataFrame


def build(
    wh: Warehouse,
    table: str,
    partition: str,
    params: dict[str, object],
    scope: dict[str, list[str]] | None = None,
) -> Built:
    """Runs `sql/<table>.sql` with `params` and replaces the partition's file with the result;
    `scope` names the partitions of its inputs the statement reads (see `queries.run`)."""
    frame = queries.run(wh.root, queries.sql_file(table), params, scope)
    key = AGGREGATES[table]
    dest = wh.root / table / f"{key}={partition}" / "part.parquet"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with wh.lock():
        remove_temporaries(dest.parent)  # what a build killed before its rename left
        # Partitions of one table share a schema unless its SQL changed since an older one was
        # built: then the view must match columns by name (see warehouse.MIXED_SCHEMA_MARKER).
        other = next(
            (p for p in (wh.root / table).glob(f"{key}=*/part.parquet") if p != dest), None
        )
        if other is not None and pl.read_parquet_schema(other) != frame.schema:
            wh.mark_mixed_schema(table)
        atomic_write_parquet(frame, dest, point="aggregate:unrenamed")
        crash_point("aggregate:renamed")
        wh.refresh_views()
    totals = frame.select(
        pl.col("requests").sum().alias("requests"), pl.col("bytes").sum().alias("bytes")
    ).row(0)
    preview = (
        frame.group_by("source").agg(pl.col("requests").sum(), pl.col("bytes").sum()).sort("source")
        if not frame.is_empty()
        else frame
    )
    return Built(
        table, partition, dest, frame.height, int(totals[0] or 0), int(totals[1] or 0), preview
    )


def build_daily_traffic(wh: Warehouse, day: dt.date) -> Built:
    day_s = day.isoformat()
    return build(wh, "daily_traffic", day_s, {"day": day_s}, scope={"requests": [day_s]})


def build_weekly_traffic(wh: Warehouse, week_start: dt.date) -> Built:
    if dates.week_start(week_start) != week_start:
        raise ValueError(f"{week_start} is not a Monday: ISO weeks start on Monday")
    days = [(week_start + dt.timedelta(days=i)).isoformat() for i in range(7)]
    return build(
        wh,
        "weekly_traffic",
        week_start.isoformat(),
        {"week_start": week_start.isoformat()},
        scope={"daily_traffic": days},
    )
