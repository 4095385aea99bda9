"""Running SQL against the warehouse: bound parameters only, results as polars frames."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import duckdb
import polars as pl

from pipeline.warehouse.store import Warehouse

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def sql_file(name: str) -> str:
    """The text of `sql/<name>.sql` (one statement per file, named after what it answers)."""
    return (SQL_DIR / f"{name}.sql").read_text()


# Warehouses whose views this process has refreshed. Every writer (an ingest's commit, an aggregate
# build) refreshes the views itself, so readers need to do it only once per process: to pick up
# a folder that moved. Refreshing per query would write the DuckDB file, under the lock, every query.
_refreshed: set[Path] = set()
_refreshed_lock = threading.Lock()


def run(
    warehouse: Path,
    text: str,
    params: Mapping[str, object] | None = None,
    scope: Mapping[str, list[str]] | None = None,
) -> pl.DataFrame:
    """Runs one statement with `$name` parameters bound (never formatted into the text).

    `scope` narrows tables to some of their partitions for this statement ({"requests":
    ["2026-11-20"]}), see `Warehouse.scope`: a partition's aggregate then costs the same
    whatever the warehouse's history.
    """
    with connect(warehouse, scope) as con:
        rel = con.sql(text, params=dict(params) if params else None)
        if rel is None:  # a statement that returns nothing
            return pl.DataFrame()
        return rel.pl()


@contextlib.contextmanager
def connect(
    warehouse: Path, scope: Mapping[str, list[str]] | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse's views (refreshed once per process), with
    `scope` applied as in `run`: for work that runs several statements on one connection
    (temporary tables). Closed on exit."""
    wh = Warehouse(warehouse)
    with _refreshed_lock:
        if wh.root not in _refreshed or not wh.db_path.exists():
            with wh.lock():
                wh.refresh_views()
            _refreshed.add(wh.root)
    con = wh.connect(read_only=True)
    try:
        for table, values in (scope or {}).items():
            wh.scope(con, table, list(values))
        yield con
    finally:
        con.close()


def format_frame(frame: pl.DataFrame) -> str:
    """A frame as a plain markdown table, every row shown (readable in a terminal or a mail)."""
    with pl.Config(
        tbl_rows=-1,
        tbl_cols=-1,
        fmt_str_lengths=120,
        tbl_width_chars=1000,  # wrap nothing: the table is for reading, a terminal may scroll
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_formatting="ASCII_MARKDOWN",
    ):
        return str(frame)


def print_frame(frame: pl.DataFrame, fmt: str = "table") -> None:
    if fmt == "csv":
        sys.stdout.write(frame.write_csv())
    elif fmt == "json":
        sys.stdout.write(frame.write_json() + "\n")
    else:
        print(format_frame(frame))
