"""The `requests` asset: one landing file parsed into the warehouse (requests + rejects)."""

from pathlib import Path

import dagster as dg

from assets.defs.partitions import landing_files
from assets.resources import DlcdnResource
from pipeline.ingest.reader import InputError
from pipeline.ingest.run import IngestResult, ingest_file


@dg.asset(
    partitions_def=landing_files,
    group_name="ingest",
    kinds={"polars", "parquet"},
    description="One landing file parsed into requests/ and rejects/ Parquet (the same code as "
    "`dlcdn ingest`); a file whose content is already in the warehouse is recognised and skipped.",
)
def requests(context: dg.AssetExecutionContext, dlcdn: DlcdnResource) -> dg.MaterializeResult:
    rel = context.partition_key
    geo, key = dlcdn.enrichment()
    try:
        with dlcdn.landing_location().open_local(rel) as path:
            result = ingest_file(
                path,
                dlcdn.open_warehouse(),
                dlcdn.settings(),
                geo=geo,
                ip_key=key,
                name=Path(rel).name,
            )
    except InputError as e:
        raise dg.Failure(description=str(e), allow_retries=False) from None
    finally:
        geo.close()
    context.log.info(_summary(result))
    return dg.MaterializeResult(metadata=ingest_metadata(result))


def _summary(r: IngestResult) -> str:
    if r.status == "duplicate":
        return f"{r.path}: skipped, {r.note}"
    return (
        f"{r.path}: {r.lines_total:,} lines = {r.lines_blank:,} blank + {r.rows_parsed:,} parsed "
        f"+ {r.rows_rejected:,} rejected"
    )


def ingest_metadata(r: IngestResult) -> dict[str, object]:
    """The accounting of one file as Dagster metadata (rows, bytes, rejects, a preview)."""
    ratio = r.rows_rejected / max(r.lines_total - r.lines_blank, 1)
    reasons = "\n".join(f"| {k} | {v:,} |" for k, v in r.reject_reasons.items()) or "| (none) | 0 |"
    preview = (
        f"**{r.status}** `{r.path}` ({r.format})\n\n"
        f"| lines | blank | parsed | rejected |\n|---|---|---|---|\n"
        f"| {r.lines_total:,} | {r.lines_blank:,} | {r.rows_parsed:,} | {r.rows_rejected:,} |\n\n"
        f"| reject reason | lines |\n|---|---|\n{reasons}\n"
    )
    return {
        "status": r.status,
        "file_id": r.file_id,
        "format": r.format,
        "file_bytes": dg.MetadataValue.int(r.bytes),
        "dagster/row_count": dg.MetadataValue.int(r.rows_parsed),
        "lines_total": dg.MetadataValue.int(r.lines_total),
        "rows_rejected": dg.MetadataValue.int(r.rows_rejected),
        "reject_ratio": dg.MetadataValue.float(round(ratio, 6)),
        "dates": ", ".join(d.isoformat() for d in r.dates),
        "note": r.note or "",
        "seconds": dg.MetadataValue.float(round(r.seconds, 3)),
        "preview": dg.MetadataValue.md(preview),
    }
