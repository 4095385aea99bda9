"""Aggregate assets: daily_traffic and the rollups per UTC day, weekly_traffic per ISO week."""

import datetime as dt

import dagster as dg

from assets.defs.ingest import requests
from assets.defs.partitions import daily, weekly
from assets.resources import DlcdnResource
from pipeline.warehouse import aggregates, queries
from pipeline.warehouse import rollups as rollup_tables


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
    # A backfill of any range is one run that builds its days in turn (cheaper than a run per
    # day, and what `dagster asset materialize --partition-range` needs).
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="One UTC day of requests aggregated by place, arch, branch, repo, file kind, "
    "client kind, POP and cache state (sql/daily_traffic.sql).",
)
def daily_traffic(context: dg.AssetExecutionContext, dlcdn: DlcdnResource) -> dg.MaterializeResult:
    wh = dlcdn.open_warehouse()
    days = [dt.date.fromisoformat(k) for k in context.partition_keys]
    built = [aggregates.build_daily_traffic(wh, day) for day in days]
    for b in built:
        context.log.info(f"daily_traffic {b.partition}: {b.requests:,} requests, {b.rows:,} rows")
    if len(built) == 1:
        return dg.MaterializeResult(metadata=_metadata(built[0]))
    return dg.MaterializeResult(
        metadata={
            "days": len(built),
            "requests": dg.MetadataValue.int(sum(b.requests for b in built)),
            "bytes": dg.MetadataValue.int(sum(b.bytes for b in built)),
            "dagster/row_count": dg.MetadataValue.int(sum(b.rows for b in built)),
        }
    )


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


@dg.asset(
    partitions_def=daily,
    group_name="traffic",
    kinds={"duckdb", "parquet"},
    pool="duckdb",
    # As daily_traffic: every day depends on all files, the sensor re-runs the days late files
    # touch, and a backfill of any range is one run.
    deps=[dg.AssetDep(requests, partition_mapping=dg.AllPartitionMapping())],
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="One UTC day of requests as the rollups every question in sql/, the report, "
    "budget and placement read (rollup_place, rollup_asn, ...: sql/rollups/, docs/rollups.md); "
    "the same code as `dlcdn ingest` runs for the days it touched.",
)
def rollups(context: dg.AssetExecutionContext, dlcdn: DlcdnResource) -> dg.MaterializeResult:
    days = [dt.date.fromisoformat(k) for k in context.partition_keys]
    built = rollup_tables.build_days(
        dlcdn.open_warehouse(),
        days,
        progress=lambda b: context.log.info(
            f"rollups {b.day}: {b.requests:,} requests, {sum(b.rows.values()):,} rows"
        ),
    )
    per_table = "\n".join(
        f"| {name} | {sum(b.rows[name] for b in built):,} | "
        f"{sum(b.file_bytes[name] for b in built):,} |"
        for name in rollup_tables.NAMES
    )
    return dg.MaterializeResult(
        metadata={
            "days": len(built),
            "requests": dg.MetadataValue.int(sum(b.requests for b in built)),
            "bytes": dg.MetadataValue.int(sum(b.bytes for b in built)),
            "dagster/row_count": dg.MetadataValue.int(sum(sum(b.rows.values()) for b in built)),
            "rollups": dg.MetadataValue.md(
                f"| rollup | rows | file bytes |\n|---|---|---|\n{per_table}"
            ),
        }
    )
