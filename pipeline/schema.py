"""The warehouse schema: column names and dtypes, declared once.

The writer, the DuckDB views, the checks and the docs all derive from these `pl.Schema`s;
column names are a contract (see SPEC.md, "The warehouse").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

UTC_TS = pl.Datetime("us", "UTC")

REQUESTS = pl.Schema(
    {  # type: ignore[arg-type]  # dtype classes and instances mixed
        "ts": UTC_TS,
        "date": pl.Date,
        "source": pl.String,
        "file_id": pl.String,
        "line_no": pl.Int64,
        "client_id": pl.Int64,
        "client_net": pl.String,
        "country": pl.String,
        "continent": pl.String,
        "subregion": pl.String,
        "latitude": pl.Float64,
        "longitude": pl.Float64,
        "asn": pl.Int64,
        "as_org": pl.String,
        "method": pl.String,
        "path": pl.String,
        "query": pl.String,
        "protocol": pl.String,
        "status": pl.Int16,
        "bytes": pl.Int64,
        "referer": pl.String,
        "user_agent": pl.String,
        "client_kind": pl.String,
        "pop": pl.String,
        "cache_state": pl.String,
        "elapsed_ms": pl.Float64,
        "branch": pl.String,
        "branch_resolved": pl.String,
        "repo": pl.String,
        "arch": pl.String,
        "file_kind": pl.String,
        "package": pl.String,
        "package_version": pl.String,
        "release_version": pl.String,
        "release_flavor": pl.String,
    }
)

# Only with the raw-IP opt-in (abuse investigation); never written by default.
RAW_IP_COLUMN = ("client_ip", pl.String)

REJECTS = pl.Schema(
    {
        "date": pl.Date,
        "file_id": pl.String,
        "line_no": pl.Int64,
        "raw": pl.String,
        "reason": pl.String,
    }
)

# One Parquet file written by an ingest, as the manifest records it at commit.
WRITTEN_FILE = pl.Struct({"path": pl.String, "rows": pl.Int64, "sha256": pl.String})

INGESTED_FILES = pl.Schema(
    {  # type: ignore[arg-type]  # dtype classes and instances mixed
        "file_id": pl.String,
        "name": pl.String,
        "format": pl.String,
        "source": pl.String,
        "bytes": pl.Int64,
        "lines_total": pl.Int64,
        "lines_blank": pl.Int64,
        "rows_parsed": pl.Int64,
        "rows_rejected": pl.Int64,
        "first_ts": UTC_TS,
        "last_ts": UTC_TS,
        "ingested_at": UTC_TS,
        # Which dates the file wrote rows to (the days to re-aggregate) and anything to know about
        # the file as a whole (a truncated compressed stream, a superseded shorter version).
        "dates": pl.List(pl.Date),
        "note": pl.String,
        # The file_id of an earlier, shorter version of the same file (a log that grew) whose rows
        # this one replaces; the views hide superseded versions.
        "supersedes": pl.String,
        # Every Parquet file the ingest wrote, as committed: its path in the warehouse, its rows
        # and the SHA-256 of its bytes (`dlcdn verify` checks the warehouse against them). Null in
        # rows written before these were recorded.
        "files": pl.List(WRITTEN_FILE),
    }
)

ARCHES = (
    "x86",
    "x86_64",
    "armhf",
    "armv7",
    "aarch64",
    "ppc64le",
    "s390x",
    "riscv64",
    "loongarch64",
    "mips64",
)
REPOS = ("main", "community", "testing", "releases", "backports")
FILE_KINDS = (
    "apkindex",
    "package",
    "release",
    "checksum",
    "signature",
    "release_index",
    "netboot",
    "cloud_image",
    "mirrors_list",
    "last_updated",
    "other",
)
CLIENT_KINDS = (
    "apk",
    "curl",
    "wget",
    "busybox-wget",
    "buildkit",
    "go-http",
    "python",
    "package-proxy",
    "browser",
    "crawler",
    "other",
)

# Reasons a line lands in rejects (the `reason` column), kept as a closed set so that reject counts
# group cleanly.
REJECT_REASONS = {
    "invalid_utf8": "the line is not valid UTF-8 (binary or another encoding)",
    "line_too_long": "the line is longer than the parser's limit (1 MiB)",
    "no_match": "the line does not match the file's log format",
    "bad_timestamp": "the timestamp field cannot be read as a date and time",
    "bad_json": "the JSON object is malformed or truncated",
    "missing_field": "a required field (time, status) is missing",
    "bad_value": "a field holds a value outside its domain (status not 100-599, bytes < 0)",
}


@dataclass(frozen=True)
class Table:
    """One warehouse table as users see it: its folder and view name, the partition key, what a
    row is, and what each column means. `docs/warehouse.md` is generated from these."""

    name: str
    schema: pl.Schema
    row: str  # what one row is, one sentence
    columns: Mapping[str, str]  # column -> meaning; every column of `schema`, in its order
    partition_key: str | None = "date"


# Every table a user can query, in the order the docs list them. Each stage that writes a table
# registers it here (see `register`), so the column dictionary cannot miss one.
TABLES: dict[str, Table] = {}


def register(table: Table) -> Table:
    missing = set(table.schema) ^ set(table.columns)
    if missing:
        raise ValueError(
            f"table {table.name}: columns without a description or not in the schema: {sorted(missing)}"
        )
    TABLES[table.name] = table
    return table
