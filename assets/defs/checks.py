"""Great Expectations suites as blocking asset checks: bad data stops the line before reports."""

import datetime as dt

import dagster as dg

from assets.defs.ingest import requests
from assets.defs.partitions import daily, landing_files
from assets.defs.traffic import daily_traffic, rollups
from assets.resources import DlcdnResource
from pipeline.warehouse import quality, verify
from pipeline.warehouse import rollups as rollup_tables


def _result(v: quality.Validation) -> dg.AssetCheckResult:
    metadata: dict[str, object] = {
        "summary": v.summary(),
        "expectations": dg.MetadataValue.int(len(v.outcomes)),
        "failed": dg.MetadataValue.int(len(v.failed)),
        "failures": dg.MetadataValue.md(
            "| expectation | unexpected rows | of | error |\n|---|---|---|---|\n"
            + "\n".join(
                f"| {o.label} | {o.unexpected} | {o.checked} | {o.error or ''} |" for o in v.failed
            )
        )
        if v.failed
        else dg.MetadataValue.md("all expectations passed"),
    }
    if v.docs is not None:
        metadata["data_docs"] = dg.MetadataValue.url(v.docs.as_uri())
    return dg.AssetCheckResult(
        passed=v.success,
        severity=dg.AssetCheckSeverity.ERROR,
        description=v.summary(),
        metadata=metadata,
    )


@dg.asset_check(
    asset=requests,
    blocking=True,
    partitions_def=landing_files,
    description="GX suite on the file's requests: schema and types, non-null keys, status 100..599, "
    "bytes >= 0, arch/repo/file_kind/client_kind in their known sets, every timestamp inside its "
    "date partition, reject ratio under DLCDN_REJECT_RATIO_MAX.",
)
def requests_quality(
    context: dg.AssetCheckExecutionContext, dlcdn: DlcdnResource
) -> dg.AssetCheckResult:
    file_id = dlcdn.landing_location().fingerprint(context.partition_key)
    v = quality.validate_file(dlcdn.open_warehouse(), file_id, dlcdn.settings().reject_ratio_max)
    return _result(v)


@dg.asset_check(
    asset=daily_traffic,
    blocking=True,
    partitions_def=daily,
    description="GX suite on the day's aggregate: the day's date only, keys present, requests >= 1, "
    "bytes >= 0, dimensions in their known sets.",
)
def daily_traffic_quality(
    context: dg.AssetCheckExecutionContext, dlcdn: DlcdnResource
) -> dg.AssetCheckResult:
    wh = dlcdn.open_warehouse()
    results = [quality.validate_daily(wh, dt.date.fromisoformat(k)) for k in context.partition_keys]
    worst = next((v for v in results if not v.success), results[-1])
    return _result(worst)


@dg.asset_check(
    asset=daily_traffic,
    blocking=True,
    partitions_def=daily,
    description="`dlcdn verify` for the day: every Parquet file the manifest lists for it present, "
    "readable, with the rows and SHA-256 recorded at commit; no stray file in its partitions.",
)
def daily_files_intact(
    context: dg.AssetCheckExecutionContext, dlcdn: DlcdnResource
) -> dg.AssetCheckResult:
    days = [dt.date.fromisoformat(k) for k in context.partition_keys]
    v = verify.verify(dlcdn.open_warehouse(), days)
    listed = "\n".join(f"- `{p.path}`: {p.what}" for p in v.problems[:50])
    more = f"\n- ... and {len(v.problems) - 50:,} more" if len(v.problems) > 50 else ""
    return dg.AssetCheckResult(
        passed=v.ok,
        severity=dg.AssetCheckSeverity.ERROR,
        description=v.summary(),
        metadata={
            "files": dg.MetadataValue.int(v.files),
            "logs": dg.MetadataValue.int(v.logs),
            "problems": dg.MetadataValue.md(listed + more if v.problems else "none"),
            "files_without_checksum": dg.MetadataValue.int(len(v.without_checksum)),
        },
    )


@dg.asset_check(
    asset=rollups,
    blocking=True,
    partitions_def=daily,
    description="Every rollup holds each of the day's requests once: its requests and bytes equal "
    "the raw day's (what makes an answer from the rollups the raw scan's answer).",
)
def rollups_match_requests(
    context: dg.AssetCheckExecutionContext, dlcdn: DlcdnResource
) -> dg.AssetCheckResult:
    wh = dlcdn.open_warehouse()
    wrong = {
        k: rollup_tables.mismatches(wh, dt.date.fromisoformat(k)) for k in context.partition_keys
    }
    wrong = {k: v for k, v in wrong.items() if v}
    return dg.AssetCheckResult(
        passed=not wrong,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(context.partition_keys)} day(s) checked, {len(wrong)} with a mismatch",
        metadata={
            "mismatches": dg.MetadataValue.md(
                "\n".join(f"- {k}: {m}" for k, ms in wrong.items() for m in ms) or "none"
            )
        },
    )
