"""The warehouse on disk: hive-partitioned zstd Parquet, a manifest, and DuckDB views over them.

Layout (every table and column: docs/warehouse.md):
    requests/date=YYYY-MM-DD/<file_id>.parquet
    rejects/date=YYYY-MM-DD/<file_id>.parquet
    ingested_files/<file_id>.parquet     one manifest row per ingested file
    warehouse.duckdb                     views and macros only

A file's rows become visible in one step: its Parquet files are staged, moved into place (still
invisible, since the views only read files named in the manifest), then its manifest row is
written with an atomic rename. A crash at any point leaves either the old or the new state.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from pipeline import files
from pipeline.faults import crash_point
from pipeline.files import atomic_write_parquet
from pipeline.schema import INGESTED_FILES, REJECTS, REQUESTS

if TYPE_CHECKING:  # imported where used: a query (`dlcdn sql`) needs neither
    import pyarrow as pa
    import pyarrow.parquet as pq

DB_NAME = "warehouse.duckdb"
# The duckdb shell maintainers install (`duckdb-cli` 1.5.x) reads files written in the 1.5 storage
# format; DuckDB 2.0 writes a newer one by default, which that shell refuses to open.
STORAGE_COMPATIBILITY = "v1.5.0"
# Aggregate tables (pipeline.warehouse.aggregates) and the hive key of their partitions.
AGGREGATES = {"daily_traffic": "date", "weekly_traffic": "week"}
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3}
# Row-group statistics (min, max, null count) let DuckDB skip row groups. They pay off for
# columns whose values follow the file's order (ts, line_no), and for text that is often wholly
# null in a row group: a mirror log has no POP or cache state, and the shipped queries filter
# `cache_state`, `arch` and `client_net` on IS NOT NULL. For other text the minimum and maximum
# span nearly every value in every row group, and computing them is a large share of the
# writer's time (docs/performance.md).
STATISTICS_TEXT_COLUMNS = frozenset({"cache_state", "pop", "arch", "client_net"})
# Manifest rows are written one file per ingested file (an atomic rename each); past this many
# such files they are merged into one, so reading the manifest costs the same after a year.
MANIFEST_MERGE_AT = 16
# Left in a table's folder once its files stop sharing one schema (raw-IP opt-in files carry
# `client_ip`, an aggregate's SQL gained a column): its view then matches columns by name, which
# reads every file's footer per query. Without it, a view reads only the files its filter keeps.
MIXED_SCHEMA_MARKER = ".mixed-schema"


def arrow_schema(schema: pl.Schema) -> pa.Schema:
    return pl.DataFrame(schema=schema).to_arrow().schema


def duckdb_type(dtype: Any) -> str:
    if dtype == pl.Datetime("us", "UTC"):
        return "TIMESTAMP WITH TIME ZONE"
    if isinstance(dtype, pl.List):
        return duckdb_type(dtype.inner) + "[]"
    if isinstance(dtype, pl.Struct):
        return "STRUCT(" + ", ".join(f"{f.name} {duckdb_type(f.dtype)}" for f in dtype.fields) + ")"
    return {
        pl.String: "VARCHAR",
        pl.Int64: "BIGINT",
        pl.Int16: "SMALLINT",
        pl.Float64: "DOUBLE",
        pl.Date: "DATE",
        pl.Boolean: "BOOLEAN",
    }[dtype.base_type()]


@dataclass
class Warehouse:
    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root).absolute()

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    def table_dir(self, table: str) -> Path:
        return self.root / table

    def ensure(self) -> None:
        for sub in ("requests", "rejects", "ingested_files", ".staging"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One writer of manifest and views at a time, across processes."""
        self.ensure()
        with files.lock(self.root / ".lock"):
            yield

    # -- the manifest ---------------------------------------------------------------------------

    def manifest(self) -> pl.DataFrame:
        """Every manifest row, superseded versions included (see `current_manifest`)."""
        files = sorted((self.root / "ingested_files").glob("*.parquet"))
        if not files:
            return pl.DataFrame(schema=INGESTED_FILES)
        rows = pl.scan_parquet(files, schema=INGESTED_FILES, missing_columns="insert").collect()
        # A file ingested again (--force) has a newer row; a merge interrupted by a crash leaves
        # a row twice: the newest row of each file_id is the one that counts.
        return (
            rows.sort("ingested_at", nulls_last=False)
            .unique("file_id", keep="last", maintain_order=True)
            .sort("ingested_at", "file_id")
        )

    def current_manifest(self) -> pl.DataFrame:
        m = self.manifest()
        superseded = m["supersedes"].drop_nulls()
        return m.filter(~pl.col("file_id").is_in(superseded.implode()))

    def commit(self, staged: StagedFile, manifest_row: pl.DataFrame) -> None:
        """Moves a staged file's Parquet into place, then makes it visible with its manifest row
        (which records each file's rows and checksum, for `dlcdn verify`)."""
        written = [written_file(staged.dir / rel, rel) for rel in staged.files]
        manifest_row = manifest_row.with_columns(
            pl.Series("files", [written], dtype=INGESTED_FILES["files"])
        )
        with self.lock():
            files.remove_temporaries(self.root / "ingested_files")  # a killed commit's
            for rel in staged.files:
                dest = self.root / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged.dir / rel, dest)
                crash_point("commit:parquet_moved")
            crash_point("commit:before_manifest")
            atomic_write_parquet(
                manifest_row.select(list(INGESTED_FILES)),
                self.root / "ingested_files" / f"{staged.file_id}.parquet",
                point="commit:manifest_unrenamed",
            )
            crash_point("commit:manifest_renamed")
            superseded = manifest_row["supersedes"][0]
            if superseded:
                self._drop_file(superseded)
            for table in staged.extra_columns:
                self.mark_mixed_schema(table)
            self.merge_manifest()
            self.refresh_views()
        crash_point("commit:views_refreshed")
        shutil.rmtree(staged.dir, ignore_errors=True)

    def merge_manifest(self, at: int = MANIFEST_MERGE_AT) -> None:
        """Merges the manifest's per-file rows into one file once there are more than `at`.

        The merged file is written (atomically) before the files it replaces are removed, so a
        crash in between leaves rows twice, never none; `manifest()` and the views keep the
        newest row per file_id. Callers hold the lock.
        """
        folder = self.root / "ingested_files"
        files = sorted(folder.glob("*.parquet"))
        if len(files) <= at:
            return
        merged = self.manifest()  # one row per file_id: a re-ingested file's older row goes
        atomic_write_parquet(
            merged.select(list(INGESTED_FILES)), folder / f"merged-{uuid.uuid4().hex}.parquet"
        )
        for f in files:
            f.unlink(missing_ok=True)

    def mark_mixed_schema(self, table: str) -> None:
        (self.root / table).mkdir(parents=True, exist_ok=True)
        (self.root / table / MIXED_SCHEMA_MARKER).touch()

    def _by_name(self, table: str) -> str:
        """read_parquet's option for a table's files: by name only once their schemas differ."""
        return (
            ", union_by_name = true" if (self.root / table / MIXED_SCHEMA_MARKER).exists() else ""
        )

    def _drop_file(self, file_id: str) -> None:
        """Removes an older version's rows; its manifest row goes last (it hides them until then)."""
        for table in ("requests", "rejects"):
            for part in (self.root / table).glob(f"date=*/{file_id}.parquet"):
                part.unlink(missing_ok=True)
        # The newer row names it in `supersedes`; the older row itself can go now.
        (self.root / "ingested_files" / f"{file_id}.parquet").unlink(missing_ok=True)

    def clean_staging(self) -> None:
        """Removes what crashed ingests left in staging (their pid is gone)."""
        for d in (self.root / ".staging").glob("*"):
            pid = d.name.split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(d, ignore_errors=True)

    # -- DuckDB ---------------------------------------------------------------------------------

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        if read_only and self.db_path.exists():
            path = str(self.db_path)
            return _waiting_for_lock(lambda: duckdb.connect(path, read_only=True))
        self.ensure()
        return _writable(self.db_path)

    def refresh_views(self) -> None:
        """(Re)creates the views; called after every commit, and cheap enough to call anytime.
        Callers hold the lock.

        Paths are absolute so the database opens from any directory; a moved warehouse is
        fixed by any dlcdn command that writes (or `dlcdn sql`, which refreshes first). The views
        change in one transaction, and a new database file appears with its views or not at
        all, so a reader never opens one that a killed writer left half made.
        """
        self.write_calendar()
        statements = self.view_statements()
        # Views bind their globs at query time, so new Parquet files need no refresh: only a
        # change of the statements themselves does (a first file, a schema marker, a moved
        # warehouse). Skipping the rest keeps a commit's cost flat however many files there are.
        stamp = self.root / ".views"
        digest = hashlib.sha256("\n".join(statements).encode()).hexdigest()
        current = stamp.exists() and self.db_path.exists()
        if current and stamp.read_text() == f"{digest} {self.db_path.stat().st_mtime_ns}":
            return
        for stale in self.root.glob(f".{self.db_path.name}.*.tmp*"):
            stale.unlink()  # a new database a killed writer did not finish
        if self.db_path.exists():
            _execute_all(self.db_path, statements)
        else:
            with files.atomic_path(self.db_path) as fresh:
                _execute_all(fresh, statements)
        files.atomic_write_text(stamp, f"{digest} {self.db_path.stat().st_mtime_ns}")

    def table_source(self, table: str, files: str | None) -> str:
        """The SELECT behind a table's view, over `files` (a glob or a list literal, or None for
        no file yet: an empty select of the right types)."""
        if files is None:
            return _empty_select(REQUESTS if table == "requests" else REJECTS)
        key = AGGREGATES.get(table, "date")
        body = (
            f"SELECT * FROM read_parquet({files}, hive_partitioning = true, "
            f"hive_types = {{'{key}': DATE}}{self._by_name(table)})"
        )
        if table in ("requests", "rejects"):
            body += " WHERE file_id IN (SELECT file_id FROM ingested_files)"
        return body

    def partition_files(self, table: str, values: list[str]) -> list[Path]:
        """The Parquet files of some partitions of a table (dates or ISO week starts)."""
        key = AGGREGATES.get(table, "date")
        return sorted(
            f for v in values for f in (self.root / table / f"{key}={v}").glob("*.parquet")
        )

    def scope(self, con: duckdb.DuckDBPyConnection, table: str, values: list[str]) -> None:
        """Narrows `table` on this connection to some of its partitions: a temporary view of the
        same name shadows the warehouse's. A query that needs one day (or week) then opens that
        day's files only, instead of listing and binding every partition the warehouse holds."""
        files = self.partition_files(table, values)
        where = ""
        if not files and table in AGGREGATES:
            # None of those partitions is built: no rows, but the columns of the others.
            files = sorted((self.root / table).glob(f"{AGGREGATES[table]}=*/part.parquet"))[:1]
            where = " WHERE false"
            if not files:
                return  # no partition at all: the query sees the warehouse as it is
        listed = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
        body = self.table_source(table, listed if files else None)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS {body}{where}")

    def view_statements(self) -> list[str]:
        root = str(self.root).replace("'", "''")
        has_manifest = any((self.root / "ingested_files").glob("*.parquet"))
        stmts = []
        if has_manifest:
            stmts.append(
                "CREATE OR REPLACE VIEW ingested_files_all AS SELECT * FROM read_parquet("
                f"'{root}/ingested_files/*.parquet', union_by_name = true) "
                "QUALIFY row_number() OVER (PARTITION BY file_id ORDER BY ingested_at DESC) = 1"
            )
        else:
            stmts.append(
                f"CREATE OR REPLACE VIEW ingested_files_all AS {_empty_select(INGESTED_FILES)}"
            )
        stmts.append(
            "CREATE OR REPLACE VIEW ingested_files AS SELECT * FROM ingested_files_all WHERE file_id"
            " NOT IN (SELECT supersedes FROM ingested_files_all WHERE supersedes IS NOT NULL)"
        )
        for table in ("requests", "rejects"):
            has_files = any((self.root / table).glob("date=*/*.parquet"))
            body = self.table_source(
                table, f"'{root}/{table}/date=*/*.parquet'" if has_files else None
            )
            stmts.append(f"CREATE OR REPLACE VIEW {table} AS {body}")
        for table, key in AGGREGATES.items():
            if any((self.root / table).glob(f"{key}=*/part.parquet")):
                body = self.table_source(table, f"'{root}/{table}/{key}=*/part.parquet'")
                stmts.append(f"CREATE OR REPLACE VIEW {table} AS {body}")
        # The Alpine branch calendar (package data), and whether a branch was supported on a day.
        stmts.append(
            f"CREATE OR REPLACE VIEW branches AS SELECT * FROM read_parquet('{root}/branches.parquet')"
        )
        # Fastly POP locations (package data), for origin demand by place.
        stmts.append(
            f"CREATE OR REPLACE VIEW pops AS SELECT * FROM read_parquet('{root}/pops.parquet')"
        )
        stmts.append(
            "CREATE OR REPLACE MACRO branch_status(b, d) AS CASE "
            "WHEN b IS NULL THEN NULL WHEN b = 'edge' THEN 'supported' "
            "WHEN NOT EXISTS (SELECT 1 FROM branches WHERE branch = b) THEN 'unknown' "
            "WHEN EXISTS (SELECT 1 FROM branches WHERE branch = b AND released <= d "
            "AND (eol IS NULL OR d < eol)) THEN 'supported' ELSE 'end-of-life' END"
        )
        # Fastly's cache states, classified once for every query: a hit was served from the
        # CDN's cache; a miss or pass was fetched from origin (the load the T1 mirrors carry).
        # NULL (a mirror log, no CDN) is neither.
        stmts.append("CREATE OR REPLACE MACRO is_hit(state) AS state LIKE 'HIT%'")
        stmts.append(
            "CREATE OR REPLACE MACRO is_origin(state) AS (state LIKE 'MISS%' OR state LIKE 'PASS%')"
        )
        # The rollups every question reads, and their client-sketch macros.
        from pipeline.warehouse import rollups

        stmts += rollups.view_statements(self)
        return stmts

    def write_calendar(self) -> None:
        """Copies the shipped reference tables (branch calendar, POP locations) into the warehouse
        for the `branches` and `pops` views."""
        from pipeline.alpine import branch_calendar

        self.ensure()
        pops = pl.read_csv(resources.files("pipeline.data").joinpath("pops.csv").read_bytes())
        for name, table in (
            ("branches", branch_calendar().select("branch", "released", "eol")),
            ("pops", pops),
        ):
            dest = self.root / f"{name}.parquet"
            if dest.exists() and pl.read_parquet(dest).equals(table):
                continue
            atomic_write_parquet(table, dest)


def _empty_select(schema: pl.Schema) -> str:
    cols = ", ".join(f"CAST(NULL AS {duckdb_type(t)}) AS {name}" for name, t in schema.items())
    return f"SELECT {cols} WHERE false"


def _writable(path: Path) -> duckdb.DuckDBPyConnection:
    return _waiting_for_lock(
        lambda: duckdb.connect(
            str(path), config={"storage_compatibility_version": STORAGE_COMPATIBILITY}
        )
    )


def _execute_all(path: Path, statements: list[str]) -> None:
    """Runs `statements` in one transaction on the database file at `path`."""
    con = _writable(path)
    try:
        con.execute("BEGIN TRANSACTION")
        for stmt in statements:
            con.execute(stmt)
        con.execute("COMMIT")
    finally:
        con.close()


# DuckDB locks its file per process: a writer (a view refresh) cannot open it while another
# process reads it, nor a reader while a writer has it. Both hold it briefly (a refresh takes
# milliseconds; a rollup build reads between its writes), so each waits for the other this long.
LOCK_WAIT_SECONDS = 120.0


def _waiting_for_lock(
    open_db: Callable[[], duckdb.DuckDBPyConnection],
) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            return open_db()
        except duckdb.IOException as e:
            if "Could not set lock" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def written_file(path: Path, rel: str) -> dict[str, object]:
    """A Parquet file as the manifest records it: path in the warehouse, rows, SHA-256."""
    import pyarrow.parquet as pq

    return {"path": rel, "rows": pq.read_metadata(path).num_rows, "sha256": sha256_of(path)}


@dataclass
class StagedFile:
    """The Parquet a file's ingest writes, in a private staging folder until commit."""

    file_id: str
    dir: Path
    files: list[str] = field(default_factory=list)  # paths relative to the warehouse root
    # Tables whose staged files carry columns beyond the table's schema (the raw-IP opt-in).
    extra_columns: set[str] = field(default_factory=set)


class PartitionWriter:
    """Appends frames to one Parquet file per date partition of a table, in staging."""

    def __init__(self, staged: StagedFile, table: str, schema: pl.Schema):
        self.staged = staged
        self.table = table
        self.schema = arrow_schema(schema)
        self.columns = list(schema)
        self.statistics = [
            c for c, dtype in schema.items() if dtype != pl.String or c in STATISTICS_TEXT_COLUMNS
        ]
        self.writers: dict[str, pq.ParquetWriter] = {}

    def write(self, df: pl.DataFrame) -> None:
        if df.is_empty():
            return
        for (day,), part in df.partition_by("date", as_dict=True, maintain_order=True).items():
            key = day.isoformat()
            writer = self.writers.get(key)
            if writer is None:
                rel = f"{self.table}/date={key}/{self.staged.file_id}.parquet"
                path = self.staged.dir / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                import pyarrow.parquet as pq

                writer = pq.ParquetWriter(
                    path, self.schema, write_statistics=self.statistics, **PARQUET_OPTIONS
                )
                self.writers[key] = writer
                self.staged.files.append(rel)
            writer.write_table(part.select(self.columns).to_arrow().cast(self.schema))

    def close(self) -> list[str]:
        """Closes every file; returns the dates written."""
        for w in self.writers.values():
            w.close()
        return sorted(self.writers)


def new_staging(wh: Warehouse, file_id: str) -> StagedFile:
    wh.ensure()
    d = wh.root / ".staging" / f"{os.getpid()}-{file_id}-{uuid.uuid4().hex[:8]}"
    d.mkdir(parents=True)
    return StagedFile(file_id=file_id, dir=d)
