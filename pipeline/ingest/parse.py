"""One batch of raw lines -> typed fields, and rejects for the lines that do not read.

Every non-blank line ends in exactly one of the two frames: a line that does not read, or reads to
values outside their domain, becomes a reject with a reason (see `schema.REJECT_REASONS`). The
fields go on to `pipeline.ingest.enrich`, which turns them into warehouse rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from pipeline.ingest.formats import CLF_TIME, LogFormat
from pipeline.ingest.reader import Batch


@dataclass
class Fields:
    """A batch split into fields and typed, before enrichment."""

    good: pl.DataFrame  # the lines that read: typed fields, line_no, raw
    rejects: pl.DataFrame  # line_no, raw, reason
    blank: int


def parse_lines(batch: Batch, fmt: LogFormat) -> Fields:
    """Splits a batch's lines into fields and types them; lines that do not read get a reason."""
    n = len(batch.lines)
    lines = pl.DataFrame(
        {
            "line_no": pl.int_range(batch.first_line_no, batch.first_line_no + n, eager=True),
            "raw": pl.from_arrow(batch.lines),
        }
    ).with_columns(pl.col("raw").str.strip_chars_end("\r\n"))
    pre = pl.Series("pre_reason", [None] * n, dtype=pl.String)
    if batch.bad:
        idx = list(batch.bad)
        pre = pre.scatter(idx, [batch.bad[i] for i in idx])
    lines = lines.with_columns(pre)
    blank_mask = lines["raw"].str.strip_chars().str.len_bytes() == 0
    blank_mask = blank_mask & lines["pre_reason"].is_null()
    blank = int(blank_mask.sum())
    if blank:
        lines = lines.filter(~blank_mask)
    pre_rejects = lines.filter(pl.col("pre_reason").is_not_null()).select(
        "line_no", "raw", pl.col("pre_reason").alias("reason")
    )
    if batch.bad:
        lines = lines.filter(pl.col("pre_reason").is_null())
    fields = fmt.extract_frame(lines.select("line_no", "raw"))
    typed = fields.lazy().pipe(_typed, fmt.time_format).collect(engine="streaming")
    rejects = pl.concat(
        [
            pre_rejects,
            typed.filter(pl.col("reason").is_not_null()).select("line_no", "raw", "reason"),
        ]
    )
    return Fields(good=typed.filter(pl.col("reason").is_null()), rejects=rejects, blank=blank)


def _parse_time(time: pl.Expr, time_format: str) -> pl.Expr:
    if time_format == "iso":
        return time.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
    return time.str.to_datetime(
        time_format or CLF_TIME, time_unit="us", strict=False
    ).dt.convert_time_zone("UTC")


def _typed(lf: pl.LazyFrame, time_format: str) -> pl.LazyFrame:
    """Text fields -> typed columns, and the reason for lines whose values do not hold."""
    status = pl.col("status").cast(pl.Int16, strict=False)
    nbytes = (
        pl.when(pl.col("bytes").is_null() | (pl.col("bytes") == "-"))
        .then(pl.lit(0, pl.Int64))
        .otherwise(pl.col("bytes").cast(pl.Int64, strict=False))
    )
    return lf.with_columns(
        _parse_time(pl.col("time"), time_format).alias("ts"),
        status.alias("status"),
        nbytes.alias("bytes"),
        pl.col("elapsed_ms").cast(pl.Float64, strict=False),
    ).with_columns(
        pl.coalesce(
            pl.col("reason"),
            pl.when(pl.col("time").is_null() | pl.col("status").is_null()).then(
                pl.lit("missing_field")
            ),
            pl.when(pl.col("ts").is_null()).then(pl.lit("bad_timestamp")),
            pl.when(
                (pl.col("status") < 100)
                | (pl.col("status") > 599)
                | pl.col("bytes").is_null()
                | (pl.col("bytes") < 0)
            ).then(pl.lit("bad_value")),
        ).alias("reason"),
    )
