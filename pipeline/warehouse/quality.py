"""Data quality: Great Expectations 1.x suites over the warehouse Parquet, run through DuckDB.

GX is imported lazily (it costs seconds) and validates through an in-memory DuckDB connection
reading the partition's Parquet files, which is much faster than through pandas and never touches
the warehouse's DuckDB file (another process may hold it for writing).

GX on DuckDB needs one persistent connection: GX reads query results after closing the
connection, and closing a duckdb-engine connection rolls back, which discards the pending result
(every column expectation then "fails" on clean data). `_DuckDBDatasource` keeps one open.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.schema import ARCHES, CLIENT_KINDS, FILE_KINDS, REPOS, REQUESTS
from pipeline.warehouse.store import Warehouse, duckdb_type

# The columns that identify a request: never null.
REQUEST_KEYS = ("ts", "date", "source", "file_id", "line_no", "client_id", "status", "bytes")
DOCS_DIR = "data_docs"
_lock = threading.Lock()  # GX contexts are not thread-safe; checks in one process take turns


@dataclass(frozen=True)
class Outcome:
    """One expectation's result."""

    expectation: str
    column: str | None
    success: bool
    unexpected: int | None
    checked: int | None
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.expectation}({self.column})" if self.column else self.expectation


@dataclass
class Validation:
    """A suite's result over one partition."""

    suite: str
    success: bool
    outcomes: list[Outcome] = field(default_factory=list)
    docs: Path | None = None

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]

    def summary(self) -> str:
        if self.success:
            return f"{self.suite}: all {len(self.outcomes)} expectations passed"
        parts = [
            f"{o.label}: {o.error}"
            if o.error
            else f"{o.label}: {o.unexpected:,} of {o.checked:,} rows"
            for o in self.failed
        ]
        return f"{self.suite}: {len(self.failed)} expectation(s) failed: " + "; ".join(parts)


@cache
def _gx() -> Any:
    """Imports GX (seconds; only when a check runs) and registers the DuckDB datasource type."""
    import great_expectations as gx

    from pipeline.warehouse import gx_duckdb  # noqa: F401 - registers add_duckdb

    return gx


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _run_suite(
    wh: Warehouse, suite_name: str, query: str, expectations: list[Any], batch: str
) -> Validation:
    gx = _gx()
    with _lock:
        context = gx.get_context(mode="ephemeral")
        # no progress bars on stderr: checks run unattended and log their own summary
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        docs = wh.root / DOCS_DIR
        context.add_data_docs_site(
            site_name="local",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        ds = context.data_sources.add_duckdb(
            name="warehouse", connection_string="duckdb:///:memory:"
        )
        try:
            asset = ds.add_query_asset(name=batch, query=query)
            suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
            for e in expectations:
                suite.add_expectation(e)
            vd = context.validation_definitions.add(
                gx.ValidationDefinition(
                    name=f"{suite_name}:{batch}",
                    data=asset.add_batch_definition_whole_table("all"),
                    suite=suite,
                )
            )
            checkpoint = context.checkpoints.add(
                gx.Checkpoint(
                    name=f"{suite_name}-checkpoint",
                    validation_definitions=[vd],
                    actions=[gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["local"])],
                    result_format="SUMMARY",
                )
            )
            result = checkpoint.run()
        finally:
            from pipeline.warehouse.gx_duckdb import release

            release(ds)
    (run,) = result.run_results.values()
    outcomes = [_outcome(r) for r in run.results]
    return Validation(
        suite=suite_name,
        success=all(o.success for o in outcomes),
        outcomes=outcomes,
        docs=docs / "index.html",
    )


def _outcome(r: Any) -> Outcome:
    info = r.exception_info or {}
    raised = info.get("raised_exception") or any(
        isinstance(v, dict) and v.get("raised_exception") for v in info.values()
    )
    error = None
    if raised:
        msgs = [v.get("exception_message") for v in info.values() if isinstance(v, dict)]
        error = "GX could not evaluate it: " + (
            info.get("exception_message") or "; ".join(m for m in msgs if m) or "error"
        )
    cfg = r.expectation_config
    return Outcome(
        expectation=cfg.type,
        column=cfg.kwargs.get("column"),
        success=bool(r.success) and not raised,
        unexpected=r.result.get("unexpected_count"),
        checked=r.result.get("element_count"),
        error=error,
    )


def requests_expectations(max_reject_ratio: float) -> list[Any]:
    """The requests suite: columns, keys, domains, timestamps inside their partition (types are
    checked by `schema_outcome`: GX's type expectation cannot read types off a DuckDB query)."""
    gxe = _gx().expectations
    out: list[Any] = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[*REQUESTS, "ts_in_partition", "reject_ratio"], exact_match=True
        ),
        *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in REQUEST_KEYS),
        gxe.ExpectColumnValuesToBeBetween(column="status", min_value=100, max_value=599),
        gxe.ExpectColumnValuesToBeBetween(column="bytes", min_value=0),
        gxe.ExpectColumnValuesToBeInSet(column="arch", value_set=list(ARCHES)),
        gxe.ExpectColumnValuesToBeInSet(column="repo", value_set=list(REPOS)),
        gxe.ExpectColumnValuesToBeInSet(column="file_kind", value_set=list(FILE_KINDS)),
        gxe.ExpectColumnValuesToBeInSet(column="client_kind", value_set=list(CLIENT_KINDS)),
        gxe.ExpectColumnValuesToBeInSet(column="ts_in_partition", value_set=[True]),
        gxe.ExpectColumnValuesToBeBetween(
            column="reject_ratio", min_value=0, max_value=max_reject_ratio
        ),
    ]
    return out


def validate_file(wh: Warehouse, file_id: str, max_reject_ratio: float) -> Validation:
    """Validates the requests one ingested file wrote (all its date partitions)."""
    parts = sorted(wh.root.glob(f"requests/date=*/{file_id}.parquet"))
    row = wh.manifest().filter(pl.col("file_id") == file_id)
    if row.is_empty():
        raise FileNotFoundError(f"{file_id} is not in the warehouse manifest")
    # A number computed here, not text from a log: safe to write into the query.
    ratio = float(row["rows_rejected"][0] / max(row["lines_total"][0] - row["lines_blank"][0], 1))
    ratio_sql = f"(SELECT CAST({ratio!r} AS DOUBLE) AS reject_ratio)"
    if not parts:  # a file of blank lines or only rejects: validate the empty, typed view
        body = (
            "SELECT * FROM (SELECT "
            + ", ".join(f"CAST(NULL AS {duckdb_type(t)}) AS {c}" for c, t in REQUESTS.items())
            + ") WHERE false"
        )
    else:
        body = f"SELECT * FROM read_parquet({_sql_list(parts)}, hive_partitioning = false)"
    query = (
        f"SELECT r.*, CAST(timezone('UTC', r.ts) AS DATE) = r.date AS ts_in_partition, m.reject_ratio "
        f"FROM ({body}) r CROSS JOIN {ratio_sql} m"
    )
    if not parts:
        # An empty batch still reports the reject ratio: check it on its own.
        query = f"SELECT NULL AS ts_in_partition, m.reject_ratio FROM {ratio_sql} m"
        gxe = _gx().expectations
        expectations = [
            gxe.ExpectColumnValuesToBeBetween(
                column="reject_ratio", min_value=0, max_value=max_reject_ratio
            )
        ]
        return _run_suite(wh, "requests", query, expectations, f"file-{file_id}")
    result = _run_suite(
        wh, "requests", query, requests_expectations(max_reject_ratio), f"file-{file_id}"
    )
    result.outcomes.insert(0, schema_outcome(body))
    result.success = all(o.success for o in result.outcomes)
    return result


def schema_outcome(query: str) -> Outcome:
    """Column names and DuckDB types of a query against the requests schema, as one outcome."""
    import duckdb

    con = duckdb.connect()
    try:
        got = {name: typ for name, typ, *_ in con.sql(f"DESCRIBE {query}").fetchall()}
    finally:
        con.close()
    want = {name: duckdb_type(t) for name, t in REQUESTS.items()}
    wrong = sorted(c for c in want if got.get(c) != want[c]) + sorted(set(got) - set(want))
    return Outcome(
        expectation="schema_and_types",
        column=None,
        success=not wrong,
        unexpected=len(wrong),
        checked=len(want),
        error=None
        if not wrong
        else "columns with a missing, extra or wrong type: "
        + ", ".join(f"{c} ({got.get(c, 'missing')} != {want.get(c, 'none')})" for c in wrong),
    )


def validate_daily(wh: Warehouse, day: dt.date) -> Validation:
    """Validates one daily_traffic partition."""
    part = wh.root / "daily_traffic" / f"date={day.isoformat()}" / "part.parquet"
    if not part.exists():
        raise FileNotFoundError(f"daily_traffic for {day} has not been built")
    gxe = _gx().expectations
    query = f"SELECT * FROM read_parquet({_sql_list([part])}, hive_partitioning = false)"
    expectations = [
        gxe.ExpectColumnValuesToNotBeNull(column="date"),
        gxe.ExpectColumnValuesToBeInSet(column="date", value_set=[day.isoformat()]),
        gxe.ExpectColumnValuesToNotBeNull(column="source"),
        gxe.ExpectColumnValuesToBeBetween(column="requests", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="bytes", min_value=0),
        gxe.ExpectColumnValuesToBeInSet(column="arch", value_set=list(ARCHES)),
        gxe.ExpectColumnValuesToBeInSet(column="repo", value_set=list(REPOS)),
        gxe.ExpectColumnValuesToBeInSet(column="file_kind", value_set=list(FILE_KINDS)),
        gxe.ExpectColumnValuesToBeInSet(
            column="branch_status", value_set=["supported", "end-of-life", "unknown"]
        ),
    ]
    return _run_suite(wh, "daily_traffic", query, expectations, f"day-{day.isoformat()}")
