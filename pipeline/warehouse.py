"""The warehouse on disk: hive-partitioned zstd Parquet, a manifest, and DuckDB views over them.

Layout (SPEC.md, "The warehouse"):
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
import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.schema import INGESTED_FILES, REJECTS, REQUESTS

DB_NAME = "warehouse.duckdb"
# The duckdb shell maintainers install (`duckdb-cli` 1.5.x) reads files written in the 1.5 storage
# format; DuckDB 2.0 writes a newer one by default, which that shell refuses to open.
STORAGE_COMPATIBILITY = "v1.5.0"
# Aggregate tables (pipeline.aggregates) and the hive key of their partitions.
AGGREGATES = {"daily_traffic": "date", "weekly_traffic": "week"}
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "write_statistics": True}


def arrow_schema(schema: pl.Schema) -> pa.Schema:
    return pl.DataFrame(schema=schema).to_arrow().schema


def duckdb_type(dtype: Any) -> str:
    if dtype == pl.Datetime("us", "UTC"):
        return "TIMESTAMP WITH TIME ZONE"
    if isinstance(dtype, pl.List):
        return duckdb_type(dtype.inner) + "[]"
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
        with open(self.root / ".lock", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- the manifest ---------------------------------------------------------------------------

    def manifest(self) -> pl.DataFrame:
        """Every manifest row, superseded versions included (see `current_manifest`)."""
        files = sorted((self.root / "ingested_files").glob("*.parquet"))
        if not files:
            return pl.DataFrame(schema=INGESTED_FILES)
        return pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed")

    def current_manifest(self) -> pl.DataFrame:
        m = self.manifest()
        superseded = m["supersedes"].drop_nulls()
        return m.filter(~pl.col("file_id").is_in(superseded.implode()))

    def commit(self, staged: StagedFile, manifest_row: pl.DataFrame) -> None:
        """Moves a staged file's Parquet into place, then makes it visible with its manifest row."""
        with self.lock():
            for rel in staged.files:
                dest = self.root / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged.dir / rel, dest)
            atomic_write_parquet(
                manifest_row.select(list(INGESTED_FILES)),
                self.root / "ingested_files" / f"{staged.file_id}.parquet",
            )
            superseded = manifest_row["supersedes"][0]
            if superseded:
                self._drop_file(superseded)
            self.refresh_views()
        shutil.rmtree(staged.dir, ignore_errors=True)

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
            return duckdb.connect(str(self.db_path), read_only=True)
        self.ensure()
        return duckdb.connect(
            str(self.db_path), config={"storage_compatibility_version": STORAGE_COMPATIBILITY}
        )

    def refresh_views(self) -> None:
        """(Re)creates the views; called after every commit, and cheap enough to call anytime.

        Paths are absolute so the database opens from any directory; a moved warehouse is
        fixed by any dlcdn command that writes (or `dlcdn sql`, which refreshes first).
        """
        self.write_calendar()
        con = self.connect()
        try:
            for stmt in self.view_statements():
                con.execute(stmt)
        finally:
            con.close()

    def view_statements(self) -> list[str]:
        root = str(self.root).replace("'", "''")
        has_manifest = any((self.root / "ingested_files").glob("*.parquet"))
        stmts = []
        if has_manifest:
            stmts.append(
                "CREATE OR REPLACE VIEW ingested_files_all AS SELECT * FROM read_parquet("
                f"'{root}/ingested_files/*.parquet', union_by_name = true)"
            )
        else:
            stmts.append(
                f"CREATE OR REPLACE VIEW ingested_files_all AS {_empty_select(INGESTED_FILES)}"
            )
        stmts.append(
            "CREATE OR REPLACE VIEW ingested_files AS SELECT * FROM ingested_files_all WHERE file_id"
            " NOT IN (SELECT supersedes FROM ingested_files_all WHERE supersedes IS NOT NULL)"
        )
        for table, schema in (("requests", REQUESTS), ("rejects", REJECTS)):
            if any((self.root / table).glob("date=*/*.parquet")):
                body = (
                    f"SELECT * FROM read_parquet('{root}/{table}/date=*/*.parquet', "
                    "hive_partitioning = true, hive_types = {'date': DATE}, union_by_name = true) "
                    "WHERE file_id IN (SELECT file_id FROM ingested_files)"
                )
            else:
                body = _empty_select(schema)
            stmts.append(f"CREATE OR REPLACE VIEW {table} AS {body}")
        for table, key in AGGREGATES.items():
            if any((self.root / table).glob(f"{key}=*/part.parquet")):
                stmts.append(
                    f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet("
                    f"'{root}/{table}/{key}=*/part.parquet', hive_partitioning = true, "
                    f"hive_types = {{'{key}': DATE}}, union_by_name = true)"
                )
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write_parquet(df: pl.DataFrame, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
    df.write_parquet(tmp, compression="zstd")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, dest)


@dataclass
class StagedFile:
    """The Parquet a file's ingest writes, in a private staging folder until commit."""

    file_id: str
    dir: Path
    files: list[str] = field(default_factory=list)  # paths relative to the warehouse root


class PartitionWriter:
    """Appends frames to one Parquet file per date partition of a table, in staging."""

    def __init__(self, staged: StagedFile, table: str, schema: pl.Schema):
        self.staged = staged
        self.table = table
        self.schema = arrow_schema(schema)
        self.columns = list(schema)
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
                writer = pq.ParquetWriter(path, self.schema, **PARQUET_OPTIONS)
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
