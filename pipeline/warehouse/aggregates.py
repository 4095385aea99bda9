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
from pipeline.files import atomic_write_parquet
from pipeline.warehouse import queries
from pipeline.warehouse.store import AGGREGATES, Warehouse


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
        # Partitions of one table share a schema unless its SQL changed since an older one was
        # built: then the view must match columns by name (see warehouse.MIXED_SCHEMA_MARKER).
        other = next(
            (p for p in (wh.root / table).glob(f"{key}=*/part.parquet") if p != dest), None
        )
        if other is not None and pl.read_parquet_schema(other) != frame.schema:
            wh.mark_mixed_schema(table)
        atomic_write_parquet(frame, dest)
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
