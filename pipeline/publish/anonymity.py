"""k-anonymity for the public tables: every published row holds at least k distinct clients,
counted exactly from raw requests.

The rollups' client sketches are estimates above 1,024 clients and exist for a few rollups only,
so the threshold is decided here from `sql/publish/<table>.sql`: one row per period, cell and
client. A cell with at least k clients (and within the table's top, if it has one) is published;
the others fold, per period, into the table's "other" rows in turn (pipeline.publish.tables:
`folds`): the first fold whose group of leftover clients reaches k publishes that group as one
row, and what no fold takes is dropped. The accounting says, per period, how many rows were
published, folded and dropped, and the dropped requests and bytes against the warehouse's
totals, so that published + dropped = total for every table and period.

Statements are composed from the table declarations' column names (identifiers of this code,
never input); values (dates, k, top) are bound.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import polars as pl

from pipeline.publish.tables import OTHER, UNKNOWN, PublicTable
from pipeline.warehouse import queries

ACCOUNTING_COLUMNS: dict[str, str] = {
    "table": "the table (a resource of this package)",
    "period": "the period: a UTC day (daily_totals) or an ISO week",
    "rows": f"rows published for the period, {OTHER} rows included",
    "other_rows": f"of which {OTHER} rows (each gathers rows below k or beyond a top)",
    "rows_folded": f"rows below k (or beyond the table's top) counted in an {OTHER} row",
    "rows_dropped": f"rows below k that no {OTHER} row could take (in no published row)",
    "requests_dropped": "requests of the dropped rows (index checks for apkindex_checks)",
    "bytes_dropped": "bytes of the dropped rows",
    "requests_total": "the warehouse's requests for the table and period: published + dropped",
    "bytes_total": "the warehouse's bytes for the table and period: published + dropped",
}


@dataclass(frozen=True)
class Anonymised:
    """A table's published rows (columns as declared) and its accounting per period."""

    table: PublicTable
    rows: pl.DataFrame
    accounting: pl.DataFrame


def _q(name: str) -> str:
    return f'"{name}"'


def anonymise(
    con: duckdb.DuckDBPyConnection, table: PublicTable, start: dt.date, end: dt.date, k: int
) -> Anonymised:
    """The rows of `table` for start..end that may be published at threshold `k`, with the
    accounting of what was folded and dropped. `con` reads the warehouse's views."""
    period, dims, measures = table.period, list(table.dims), list(table.measures)
    keys = ", ".join(_q(c) for c in table.keys)
    sums = ", ".join(f"CAST(sum({_q(m)}) AS BIGINT) AS {_q(m)}" for m in measures)
    dim_values = "".join(f", coalesce({_q(d)}, '{UNKNOWN}') AS {_q(d)}" for d in dims)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE contrib AS "
        f"SELECT {_q(period)}{dim_values}, client_id, {sums} "
        f"FROM ({queries.sql_file(f'publish/{table.name}')}) GROUP BY ALL",
        {"start": start.isoformat(), "end": end.isoformat()},
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE cells AS "
        f"SELECT {keys}, {sums}, count(*) AS clients FROM contrib GROUP BY ALL"
    )
    top = ""
    if table.top is not None:
        within = ", ".join(_q(c) for c in (period, *table.top_within))
        top = (
            f" QUALIFY row_number() OVER (PARTITION BY {within} "
            f"ORDER BY {_q(measures[0])} DESC, {keys}) <= {int(table.top)}"
        )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE kept AS SELECT * FROM cells WHERE clients >= $k{top}",
        {"k": k},
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE rest AS SELECT * FROM contrib ANTI JOIN kept USING ({keys})"
    )
    parts = [con.sql(f"SELECT {keys}, {', '.join(map(_q, measures))}, clients FROM kept").pl()]
    folded: list[pl.DataFrame] = []
    for fold in table.folds:
        others, n_folded = _fold(con, table, fold, k)
        parts.append(others)
        folded.append(n_folded)
    rows = pl.concat(parts).sort(
        [period, measures[0], *dims], descending=[False, True, *[False] * len(dims)]
    )
    return Anonymised(table, rows, _accounting(con, table, rows, folded))


def _fold(
    con: duckdb.DuckDBPyConnection, table: PublicTable, fold: tuple[str, ...], k: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One fold: the groups of leftover rows (per period and the fold's dimensions) with at
    least k distinct clients become "other" rows and leave `rest`. Returns those rows and the
    number of rows folded into them per period."""
    group = ", ".join(_q(c) for c in (table.period, *fold))
    measures = list(table.measures)
    sums = ", ".join(f"CAST(sum({_q(m)}) AS BIGINT) AS {_q(m)}" for m in measures)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE other AS "
        f"SELECT {group}, {sums}, count(DISTINCT client_id) AS clients FROM rest "
        f"GROUP BY {group} HAVING count(DISTINCT client_id) >= $k",
        {"k": k},
    )
    values = ", ".join(_q(d) if d in fold else f"'{OTHER}' AS {_q(d)}" for d in table.dims)
    others = con.sql(
        f"SELECT {_q(table.period)}{', ' + values if values else ''}, "
        f"{', '.join(map(_q, measures))}, clients FROM other"
    ).pl()
    keys = ", ".join(_q(c) for c in table.keys)
    n_folded = con.sql(
        f"SELECT {_q(table.period)} AS period, count(*) AS rows_folded FROM "
        f"(SELECT DISTINCT {keys} FROM rest SEMI JOIN other USING ({group})) GROUP BY ALL"
    ).pl()
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE rest AS SELECT * FROM rest ANTI JOIN other USING ({group})"
    )
    return others, n_folded


def _accounting(
    con: duckdb.DuckDBPyConnection,
    table: PublicTable,
    rows: pl.DataFrame,
    folded: list[pl.DataFrame],
) -> pl.DataFrame:
    """Per period of the table's data: rows published, folded and dropped; dropped and total
    requests and bytes (the first measure stands for requests; every table has bytes)."""
    p, first = _q(table.period), _q(next(iter(table.measures)))
    keys = ", ".join(_q(c) for c in table.keys)
    totals = con.sql(
        f"SELECT {p} AS period, CAST(sum({first}) AS BIGINT) AS requests_total, "
        "CAST(sum(bytes) AS BIGINT) AS bytes_total FROM contrib GROUP BY ALL"
    ).pl()
    dropped = con.sql(
        f"SELECT {p} AS period, count(DISTINCT ({keys})) AS rows_dropped, "
        f"CAST(sum({first}) AS BIGINT) AS requests_dropped, "
        "CAST(sum(bytes) AS BIGINT) AS bytes_dropped FROM rest GROUP BY ALL"
    ).pl()
    published = rows.group_by(pl.col(table.period).alias("period")).agg(
        rows=pl.len(),
        other_rows=pl.any_horizontal(
            [pl.col(d) == OTHER for d in table.dims] or [pl.lit(False)]
        ).sum(),
    )
    period_dtype = totals.schema["period"]
    n_folded = (
        pl.concat([f.cast({"period": period_dtype}) for f in folded])
        .group_by("period")
        .agg(pl.col("rows_folded").sum())
        if folded
        else pl.DataFrame(schema={"period": period_dtype, "rows_folded": pl.Int64})
    )
    out = totals
    for part in (published, n_folded, dropped):
        out = out.join(part.cast({"period": period_dtype}), on="period", how="left")
    return (
        out.with_columns(
            pl.lit(table.name).alias("table"),
            pl.col("period").cast(pl.String),
            pl.col(
                "rows",
                "other_rows",
                "rows_folded",
                "rows_dropped",
                "requests_dropped",
                "bytes_dropped",
            )
            .fill_null(0)
            .cast(pl.Int64),
        )
        .select(list(ACCOUNTING_COLUMNS))
        .sort("period")
    )
