"""The public dataset per ended ISO week (the same package as `dlcdn publish`), and its blocking
validation check."""

import datetime as dt
from pathlib import Path

import dagster as dg

from assets.defs.partitions import weekly
from assets.defs.traffic import daily_traffic
from assets.resources import DlcdnResource
from pipeline.dates import iso_week
from pipeline.geo.geoip import GeoIP
from pipeline.publish import package
from pipeline.warehouse import queries


def _folder(dlcdn: DlcdnResource, partition_key: str) -> tuple[dt.date, Path]:
    """The week's Monday and its package folder, <warehouse>/public/<ISO week>."""
    monday = dt.date.fromisoformat(partition_key)
    return monday, dlcdn.warehouse_path() / "public" / iso_week(monday)


@dg.asset(
    partitions_def=weekly,
    group_name="publish",
    kinds={"parquet", "csv"},
    pool="duckdb",
    # It reads the week's raw requests; the days' blocking checks (files intact, quality) gate
    # them through daily_traffic.
    deps=[daily_traffic],
    description="The week's public, k-anonymous dataset (DLCDN_PUBLISH_K, default 10): a "
    "Frictionless Data Package of CSV and Parquet with its data sheet, in "
    "<warehouse>/public/<ISO week>/ (pipeline/publish, docs/publish.md).",
)
def public_dataset(context: dg.AssetExecutionContext, dlcdn: DlcdnResource) -> dg.MaterializeResult:
    monday, out = _folder(dlcdn, context.partition_key)
    s = dlcdn.settings()
    with GeoIP.from_settings(s) as geo:
        described = geo.describe()
    p = package.publish(
        dlcdn.open_warehouse(),
        out,
        monday,
        monday + dt.timedelta(days=6),
        s.publish_k,
        force=True,  # a re-run replaces the week's package (only ever a package)
        geoip=described,
        progress=context.log.info,
    )
    summary = p.summary()
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(out)),
            "k": dg.MetadataValue.int(p.k),
            "dagster/row_count": dg.MetadataValue.int(int(summary["rows"].sum())),
            "rows_dropped": dg.MetadataValue.int(int(summary["rows_dropped"].sum())),
            "seconds": dg.MetadataValue.float(round(p.seconds, 2)),
            "tables": dg.MetadataValue.md(queries.format_frame(summary)),
        }
    )


@dg.asset_check(
    asset=public_dataset,
    blocking=True,
    partitions_def=weekly,
    description="The week's package validates with frictionless: every resource against its "
    "schema (types, required values, clients >= k, primary keys), CSV sizes and checksums.",
)
def public_dataset_valid(
    context: dg.AssetCheckExecutionContext, dlcdn: DlcdnResource
) -> dg.AssetCheckResult:
    _, out = _folder(dlcdn, context.partition_key)
    report = package.validate(out)
    problems = package.errors(report)
    return dg.AssetCheckResult(
        passed=bool(report.valid),
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(report.tasks)} resource(s) validated, "
        f"{sum(len(t.errors) for t in report.tasks) + len(report.errors)} error(s)",
        metadata={
            "package": dg.MetadataValue.path(str(out)),
            "errors": dg.MetadataValue.md("\n".join(f"- {e}" for e in problems) or "none"),
        },
    )
