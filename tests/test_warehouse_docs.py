"""The column dictionary (docs/warehouse.md) is generated from the table declarations, and the
declarations are what the warehouse really holds.

The fixture warehouse is built the way users build one: generated Fastly and mirror logs plus a
garbage file ingested, then the day and week aggregates, so every view has real files under it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from pipeline import schema
from pipeline.ingest.run import ingest_file
from pipeline.settings import Settings
from pipeline.synthetic.generate import generate
from pipeline.warehouse import aggregates, queries, rollups
from pipeline.warehouse.store import Warehouse, duckdb_type

REPO = Path(__file__).resolve().parents[1]
MONDAY = dt.date(2026, 11, 16)


def test_committed_dictionary_is_current() -> None:
    committed = (REPO / "docs" / "warehouse.md").read_text()
    assert committed == schema.render_markdown(), "docs/warehouse.md is stale: run `make docs`"


def test_dictionary_lists_every_registered_table() -> None:
    tables = schema.load_tables()
    assert [t.name for t in tables][:3] == ["requests", "rejects", "ingested_files"]
    assert sorted(t.name for t in tables) == sorted(schema.TABLES)
    assert {"daily_traffic", "weekly_traffic"} <= set(schema.TABLES)


def test_a_newly_registered_table_reaches_the_dictionary(monkeypatch: pytest.MonkeyPatch) -> None:
    # Rule: a table registered anywhere is documented without editing the generator.
    table = schema.Table(
        "zz_example",
        pl.Schema({"day": pl.Date, "hits": pl.Int64}),
        row="One example row.",
        columns={"day": "The day.", "hits": "How many."},
    )
    monkeypatch.setitem(schema.TABLES, table.name, table)
    text = schema.render_markdown()
    assert "## `zz_example`" in text
    assert "| `hits` | BIGINT | How many. |" in text
    assert (
        text.index("## `weekly_traffic`")
        < text.index("## `zz_example`")
        < text.index("## `branches`")
    )


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"day": "The day."}, "without a description"),
        ({"day": "The day.", "hits": ""}, "without a description"),
        ({"day": "The day.", "hits": "How many.", "extra": "?"}, "not in the schema"),
        ({"hits": "How many.", "day": "The day."}, "schema's order"),
    ],
)
def test_register_refuses_columns_that_do_not_match(columns: dict[str, str], message: str) -> None:
    table = schema.Table("zz_bad", pl.Schema({"day": pl.Date, "hits": pl.Int64}), "x", columns)
    with pytest.raises(ValueError, match=message):
        schema.register(table)
    assert "zz_bad" not in schema.TABLES


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    tmp = tmp_path_factory.mktemp("dictionary")
    files = generate(tmp / "cdn", MONDAY, 2, 400, fmt="fastly", seed=3)
    files += generate(tmp / "mirror", MONDAY, 1, 200, fmt="combined", seed=3)
    garbage = tmp / "garbage.log"
    garbage.write_text("not a log line from 192.0.2.7\n")
    warehouse = Warehouse(tmp / "wh")
    for path in [*files, garbage]:
        fmt = "combined" if path == garbage else "auto"
        ingest_file(path, warehouse, Settings(), fmt_spec=fmt, ip_key=b"k" * 32)
    for day in (MONDAY, MONDAY + dt.timedelta(days=1)):
        aggregates.build_daily_traffic(warehouse, day)
        rollups.build_day(warehouse, day)
    aggregates.build_weekly_traffic(warehouse, MONDAY)
    return warehouse


@pytest.mark.parametrize(
    ("table", "declared", "params"),
    [
        ("daily_traffic", aggregates.DAILY_TRAFFIC, {"day": MONDAY.isoformat()}),
        ("weekly_traffic", aggregates.WEEKLY_TRAFFIC, {"week_start": MONDAY.isoformat()}),
    ],
)
def test_aggregate_sql_returns_its_declared_schema(
    wh: Warehouse, table: str, declared: pl.Schema, params: dict[str, str]
) -> None:
    frame = queries.run(wh.root, queries.sql_file(table), params)
    assert frame.height > 0
    assert frame.schema == declared
    written = sorted((wh.root / table).glob("*=*/part.parquet"))
    assert written
    for path in written:
        assert pl.read_parquet_schema(path) == declared, path


def test_every_registered_table_is_its_view(wh: Warehouse) -> None:
    con = wh.connect(read_only=True)
    try:
        views = {name for (name,) in con.sql("SELECT view_name FROM duckdb_views()").fetchall()}
        for table in schema.load_tables():
            assert table.name in views, (
                f"{table.name} is registered but the fixture warehouse has no such view: "
                "build it in this test's fixture"
            )
            [(rows,)] = con.sql(f"SELECT count(*) FROM {table.name}").fetchall()
            assert rows > 0, f"{table.name}: no rows to check"
            expected = [(c, duckdb_type(t)) for c, t in table.schema.items()]
            if table.partition_key and table.partition_key not in table.schema:
                expected.append((table.partition_key, "DATE"))
            # DuckDB quotes struct fields that are keywords ("rows"); the quotes are not the type
            described = [
                (c, t.replace('"', "")) for c, t, *_ in con.sql(f"DESCRIBE {table.name}").fetchall()
            ]
            assert described == expected, table.name
    finally:
        con.close()
