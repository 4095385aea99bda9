"""The warehouse schema: column names and dtypes, declared once, with what each column means.

The writer, the DuckDB views, the checks and the column dictionary (`docs/warehouse.md`, made by
`make docs`, i.e. `python -m pipeline.schema`) all derive from these `pl.Schema`s and their
`Table` registrations; column names are a contract.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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
    notes: tuple[str, ...] = ()  # paragraphs printed under the column table


# Every table a user can query. Each module that writes a table registers it (see `register`);
# `render_markdown` finds those modules itself, so the column dictionary cannot miss one.
TABLES: dict[str, Table] = {}


def register(table: Table) -> Table:
    """Adds a table to the registry; its column meanings must name the schema's columns in order."""
    missing = set(table.schema) ^ {c for c, meaning in table.columns.items() if meaning}
    if missing:
        raise ValueError(
            f"table {table.name}: columns without a description or not in the schema: {sorted(missing)}"
        )
    if list(table.columns) != list(table.schema):
        raise ValueError(f"table {table.name}: column descriptions not in the schema's order")
    TABLES[table.name] = table
    return table


def _one_of(values: tuple[str, ...]) -> str:
    return "one of " + ", ".join(f"`{v}`" for v in values)


GEO_NULL = "NULL when the address is not in the GeoIP database"

register(
    Table(
        "requests",
        REQUESTS,
        row="One parsed request (one log line that read).",
        columns={
            "ts": "When the request was logged, in UTC (the log's offset applied).",
            "date": "The UTC date of `ts`; the partition.",
            "source": "Log source: `fastly` (the CDN) or `mirror` (a T1 nginx/Apache log), "
            "unless `dlcdn ingest --source` named another.",
            "file_id": "Content fingerprint of the file the line came from "
            "(`ingested_files.file_id`).",
            "line_no": "The line's number in that file, from 1.",
            "client_id": "Keyed 64-bit BLAKE2b hash of the client address (key `DLCDN_IP_KEY`): "
            "counts distinct clients without the address; comparable only under the same key.",
            "client_net": "The client's /24 (IPv4) or /48 (IPv6) network, as text; NULL when the "
            "client is not an IP address (a hostname).",
            "country": f"ISO 3166-1 alpha-2 country of the client; {GEO_NULL}.",
            "continent": "Two-letter continent code (`AF`, `AN`, `AS`, `EU`, `NA`, `OC`, `SA`).",
            "subregion": "UN M49 sub-region of `country` (`pipeline/data/un_m49.csv`).",
            "latitude": "Client location (city database), rounded to 0.1 degree.",
            "longitude": "Client location (city database), rounded to 0.1 degree.",
            "asn": f"Autonomous system number of the client's network; {GEO_NULL}.",
            "as_org": "The autonomous system's organisation.",
            "method": 'HTTP method; NULL for a non-HTTP request (`"-" 408`, TLS bytes on port 80).',
            "path": "URL path as logged (scheme, host and query removed).",
            "query": "Query string without the `?`; NULL when there is none.",
            "protocol": "`HTTP/1.1`, `HTTP/2`, ...; NULL for a non-HTTP request.",
            "status": "HTTP status, 100 to 599.",
            "bytes": "Response body bytes (`-` in the log is 0).",
            "referer": "Referer header as logged; NULL for `-` or none.",
            "user_agent": "User-Agent header as logged; NULL for `-` or none.",
            "client_kind": f"What sort of client, from the user agent: {_one_of(CLIENT_KINDS)}; "
            "NULL without a user agent. apk sends `libfetch/2.0`, so its version is unknowable.",
            "pop": "Fastly POP that served the request (`server.datacenter`); NULL in mirror logs.",
            "cache_state": "Fastly cache state (`fastly_info.state`: `HIT`, `MISS`, `PASS`, "
            "`HIT-STALE`, `...-CLUSTER`); NULL in mirror logs.",
            "elapsed_ms": "Time to serve the request, in milliseconds; NULL when not logged.",
            "branch": "Alpine branch as requested in the path (`vX.Y`, `edge`, `latest-stable`).",
            "branch_resolved": "The branch meant: `latest-stable` resolved to the branch that was "
            "newest on `date` (branch calendar), others as requested.",
            "repo": f"Repository in the path: {_one_of(REPOS)}.",
            "arch": f"Architecture in the path or artefact name: {_one_of(ARCHES)}.",
            "file_kind": f"What the path asks for: {_one_of(FILE_KINDS)}.",
            "package": "Package name of an `.apk` (`<name>-<version>-r<N>.apk`).",
            "package_version": "Package version with its release (`1.37.0-r0`).",
            "release_version": "Version of a release artefact, cloud image or netboot "
            "(`3.22.2`, `3.21.0_rc1`, or an edge snapshot's date `20261101`).",
            "release_flavor": "Flavor of a release artefact (`minirootfs`, `standard`, `virt`, "
            "...) or a cloud image's provider (`nocloud`, ...).",
        },
        notes=(
            "Unknown values are NULL, never empty strings or guesses. With the raw-IP opt-in "
            "(`DLCDN_KEEP_RAW_IP=true`, abuse investigation only) the files also carry "
            f"`{RAW_IP_COLUMN[0]}`, the client address as text; it is never written otherwise.",
        ),
    )
)

register(
    Table(
        "rejects",
        REJECTS,
        row="One non-blank line that did not parse, with the reason.",
        columns={
            "date": "The date of the nearest parsed line before it in its file (of the first "
            "one after it when none is before; the ingest date in a file with none); the partition.",
            "file_id": "Content fingerprint of the file (`ingested_files.file_id`).",
            "line_no": "The line's number in that file, from 1.",
            "raw": "The line as text (invalid bytes replaced, at most 4,096 characters), every "
            "IP address in it masked to its /24 or /48 network.",
            "reason": "Why it did not parse: one of the reasons below.",
        },
    )
)

register(
    Table(
        "ingested_files",
        INGESTED_FILES,
        row="One ingested file (the manifest): what it held and where its lines went.",
        columns={
            "file_id": "Content fingerprint of the file's bytes: the same content under "
            "another name is not ingested again.",
            "name": "The file's name (a landing file's path relative to the landing location).",
            "format": "Log format read (`combined`, `common`, `fastly`, `nginx:...`).",
            "source": "The `source` its rows carry.",
            "bytes": "Size of the file as read (compressed size for `.gz` / `.zst`).",
            "lines_total": "Lines read: `lines_blank + rows_parsed + rows_rejected`.",
            "lines_blank": "Blank (empty or whitespace-only) lines: counted, not stored.",
            "rows_parsed": "Rows written to `requests`.",
            "rows_rejected": "Rows written to `rejects`.",
            "first_ts": "Earliest `ts` in the file.",
            "last_ts": "Latest `ts` in the file.",
            "ingested_at": "When the ingest finished (UTC).",
            "dates": "The dates the file wrote rows to (the days to re-aggregate).",
            "note": "Anything about the file as a whole (a truncated compressed stream, ...).",
            "supersedes": "`file_id` of an earlier, shorter version of the same log that this "
            "one replaces (the log grew); its rows are gone.",
            "files": "Every Parquet file the ingest wrote, as committed: `path` (relative to the "
            "warehouse), `rows`, `sha256` of its bytes; `dlcdn verify` checks the warehouse "
            "against them. Null in rows written before checksums were recorded.",
        },
        partition_key=None,
        notes=(
            "The view shows the newest row per `file_id` and hides superseded versions "
            "(`ingested_files_all` keeps them). `requests` and `rejects` show only rows of files "
            "named here: a file becomes visible in one step, when its row is committed.",
        ),
    )
)

BRANCHES = pl.Schema({"branch": pl.String, "released": pl.Date, "eol": pl.Date})
register(
    Table(
        "branches",
        BRANCHES,
        row="One Alpine branch of the calendar shipped in `pipeline/data/alpine_branches.csv`.",
        columns={
            "branch": "Branch name (`v3.22`).",
            "released": "Date of its first release.",
            "eol": "End of support of its main repository; NULL while not announced.",
        },
        partition_key=None,
        notes=(
            "The macro `branch_status(branch, day)` returns `supported`, `end-of-life` or "
            "`unknown` (NULL for a NULL branch; `edge` is always supported).",
        ),
    )
)

POPS = pl.Schema(
    {
        "pop": pl.String,
        "city": pl.String,
        "country": pl.String,
        "latitude": pl.Float64,
        "longitude": pl.Float64,
    }
)
register(
    Table(
        "pops",
        POPS,
        row="One Fastly POP, from `pipeline/data/pops.csv` (for origin demand by place).",
        columns={
            "pop": "POP code as in `requests.pop` (`FRA`).",
            "city": "City of the POP.",
            "country": "ISO 3166-1 alpha-2 country.",
            "latitude": "Latitude of the POP.",
            "longitude": "Longitude of the POP.",
        },
        partition_key=None,
    )
)


# -- the column dictionary (docs/warehouse.md) ----------------------------------------------------

# The dictionary lists these first, then every other table by name, then the reference tables.
_FIRST = ("requests", "rejects", "ingested_files")
_LAST = ("branches", "pops")
_REGISTERS = re.compile(r"\bregister\(")


def load_tables() -> list[Table]:
    """Every registered table, after importing each `pipeline` module that calls `register(`.

    Modules are found by their text, so a new module that registers a table is picked up without
    a list to edit, and the modules that register nothing (some import Great Expectations, which
    takes seconds) are not imported at all.
    """
    import pipeline

    for info in pkgutil.walk_packages(pipeline.__path__, "pipeline."):
        spec = importlib.util.find_spec(info.name)
        origin = spec.origin if spec else None
        if origin and origin.endswith(".py") and _REGISTERS.search(Path(origin).read_text()):
            importlib.import_module(info.name)
    rest = sorted(n for n in TABLES if n not in _FIRST + _LAST)
    return [TABLES[n] for n in (*_FIRST, *rest, *_LAST)]


def _files(table: Table) -> str:
    if table.name in _LAST:
        return f"`{table.name}.parquet` (copied from package data by every writer)"
    if table.partition_key is None:
        return f"`{table.name}/*.parquet`"
    return f"`{table.name}/{table.partition_key}=YYYY-MM-DD/*.parquet`"


def render_table(table: Table) -> str:
    """One table's section: what a row is, where its files are, and its columns."""
    from pipeline.warehouse.store import duckdb_type  # store imports this module

    lines = [f"## `{table.name}`", "", table.row, "", f"Files: {_files(table)}."]
    if table.partition_key and table.partition_key not in table.schema:
        lines[-1] += (
            f" The view adds the partition value as a last column, `{table.partition_key}` (DATE)."
        )
    lines += ["", "| column | type | meaning |", "|---|---|---|"]
    for name, dtype in table.schema.items():
        meaning = table.columns[name].replace("|", "\\|")
        lines.append(f"| `{name}` | {duckdb_type(dtype)} | {meaning} |")
    for note in table.notes:
        lines += ["", note]
    return "\n".join(lines) + "\n"


_PREAMBLE = """\
# The warehouse: every table and column

<!-- Generated by `make docs` (python -m pipeline.schema) from the table declarations in
pipeline/ (`schema.register`). Do not edit: tests/test_warehouse_docs.py fails when this file and
the code disagree. -->

The warehouse is a folder (`DLCDN_WAREHOUSE`, default `./warehouse`) of hive-partitioned, zstd
Parquet files and one DuckDB file, `warehouse.duckdb`, that holds only views and macros over them:

```
requests/date=YYYY-MM-DD/<file_id>.parquet     one file per ingested file and day
rejects/date=YYYY-MM-DD/<file_id>.parquet
ingested_files/<file_id>.parquet               the manifest (merged into one file past 16 files)
daily_traffic/date=YYYY-MM-DD/part.parquet     aggregates: one file per partition
weekly_traffic/week=YYYY-MM-DD/part.parquet    (the week's Monday)
branches.parquet, pops.parquet                 reference tables from package data
warehouse.duckdb                               views (one per table below) and macros
decisions/, reports/, outbox/, data_docs/      decision tables, weekly reports, mail, GX Data Docs
```

All times are UTC. A file's rows become visible in one step: its Parquet is staged, moved into
place, then its manifest row is renamed into place; the views read only files the manifest names.
Re-running a partition replaces its file whole.

## Opening it

```sh
dlcdn sql "SELECT arch, count(*) FROM requests GROUP BY ALL ORDER BY 2 DESC"
duckdb -readonly warehouse/warehouse.duckdb     # the shell: pip install duckdb-cli (1.5.x)
```

`warehouse.duckdb` is written in DuckDB's 1.5 storage format so that the `duckdb-cli` 1.5.x shell
opens it. In the shell, `SHOW TABLES;` lists the views and `DESCRIBE requests;` shows the columns
below. Open it with `-readonly`: a read-write shell locks every dlcdn command out of the file until
it exits. Even a read-only shell blocks the rare write that re-creates the views (the first file of
a new table, a moved folder), so close it when done. The views use absolute paths; any `dlcdn`
command refreshes them if the folder moved.

## Privacy

- Raw client IP addresses are never written. `client_id` is a keyed hash (key `DLCDN_IP_KEY`, a
  secret from the environment, or generated once into `~/.config/dlcdn/ip_key`, mode 0600);
  `client_net` keeps only the /24 or /48 network; latitude and longitude are rounded to 0.1
  degree. Geolocation happens on the address before it is hashed.
- IP addresses inside reject lines are masked to their /24 or /48 network.
- `DLCDN_KEEP_RAW_IP=true` (abuse investigation only, off by default) keeps the address in
  `requests.client_ip` and unmasked in `rejects.raw`.

## Nothing is lost

For every file, `lines_total = lines_blank + rows_parsed + rows_rejected` (`ingested_files`). A
line that does not parse is a `rejects` row with one of these reasons:

| reason | meaning |
|---|---|
"""


def render_markdown() -> str:
    """The column dictionary, `docs/warehouse.md`: layout, privacy, reject reasons, every table."""
    reasons = "".join(f"| `{k}` | {v} |\n" for k, v in REJECT_REASONS.items())
    sections = [render_table(t) for t in load_tables()]
    return _PREAMBLE + reasons + "\n" + "\n".join(sections)


if __name__ == "__main__":
    # Run as a script this file is `__main__`; the registry the other modules fill is the one of
    # the imported `pipeline.schema`.
    from pipeline import schema

    sys.stdout.write(schema.render_markdown())
