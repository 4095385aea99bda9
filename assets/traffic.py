"""Aggregate assets: daily_traffic per UTC day, weekly_traffic per ISO week, both from sql/."""

import datetime as dt

import dagster as dg

from assets.ingest import requests
from assets.partitions import daily, weekly
from assets.resources import DlcdnResource
from pipeline import aggregates, queries


def _metadata(built: aggregates.Built) -> dict[str, object]:
    return {
        "dagster/row_count": dg.MetadataValue.int(built.rows),
        "requests": dg.MetadataValue.int(built.requests),
        "bytes": dg.MetadataValue.int(built.bytes),
        "path": dg.MetadataValue.path(str(built.path)),
        "preview": dg.MetadataValue.md(queries.format_frame(built.preview)),
    }


@dg.asset(
    partitions_def=daily,
    group_name="traffic",
    kinds={"duckdb", "parquet"},
    pool="duckdb",
    # Any landing file may hold lines of any day (late files): every day depends on all files,
    # and the sensor re-runs exactly the days a new file touched.
    deps=[dg.AssetDep(requests, partition_mapping=dg.AllPartitionMapping())],
    description="One UTC day of requests aggregated by place, arch, branch, repo, file kind, "
    "client kind, POP and cache state (sql/daily_traffic.sql).",
)
def daily_traffic(context: dg.AssetExecutionContext, dlcdn: DlcdnResource) -> dg.MaterializeResult:
    day = dt.date.fromisoformat(context.partition_key)
    built = aggregates.build_daily_traffic(dlcdn.open_warehouse(), day)
    return dg.MaterializeResult(metadata=_metadata(built))


@dg.asset(
    partitions_def=weekly,
    group_name="traffic",
    kinds={"duckdb", "parquet"},
    pool="duckdb",
    deps=[daily_traffic],
    description="One ISO week (Monday to Sunday) of daily_traffic, the base of the weekly "
    "decisions and report (sql/weekly_traffic.sql).",
)
def weekly_traffic(context: dg.AssetExecutionContext, dlcdn: DlcdnResource) -> dg.MaterializeResult:
    week_start = dt.date.fromisoformat(context.partition_key)
    built = aggregates.build_weekly_traffic(dlcdn.open_warehouse(), week_start)
    return dg.MaterializeResult(metadata=_metadata(built))
