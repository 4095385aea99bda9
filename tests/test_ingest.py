"""Ingest into a real warehouse: accounting, idempotence, grown files, bad files, the DuckDB views."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from pipeline.ingest.reader import InputError
from pipeline.ingest.run import ingest_file
from pipeline.settings import Settings
from pipeline.warehouse.store import Warehouse

KEY = b"ingest-test-key-0123456789abcdef"
BIN = Path(sys.executable).parent


def line(i: int, day: int = 20, ip: str = "198.51.100.7") -> bytes:
    return (
        f"{ip} - - [{day:02d}/Nov/2026:10:{i // 60 % 60:02d}:{i % 60:02d} +0000] "
        f'"GET /alpine/v3.22/main/x86_64/pkg{i}-1.0-r0.apk HTTP/1.1" 200 {i} "-" "libfetch/2.0"\n'
    ).encode()


def ingest(path: Path, wh: Warehouse, **kw):  # type: ignore[no-untyped-def]
    return ingest_file(path, wh, Settings(), ip_key=KEY, **kw)


def count(wh: Warehouse, sql: str) -> int:
    con = wh.connect(read_only=True)
    try:
        return con.sql(sql).fetchall()[0][0]
    finally:
        con.close()


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "wh")


def test_accounting_and_views(tmp_path: Path, wh: Warehouse) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(b"".join(line(i) for i in range(50)) + b"\n" + b"garbage\n" + line(50, day=21))
    r = ingest(f, wh)
    assert (r.lines_total, r.lines_blank, r.rows_parsed, r.rows_rejected) == (53, 1, 51, 1)
    assert r.balanced
    assert [d.isoformat() for d in r.dates] == ["2026-11-20", "2026-11-21"]
    assert count(wh, "SELECT count(*) FROM requests") == 51
    assert count(wh, "SELECT sum(bytes) FROM requests") == sum(range(51))
    # the reject is filed under the date of the parsed line before it
    assert (
        count(wh, "SELECT count(*) FROM rejects WHERE date = '2026-11-20' AND reason = 'no_match'")
        == 1
    )
    m = wh.current_manifest().row(0, named=True)
    assert (m["lines_total"], m["rows_parsed"], m["rows_rejected"], m["lines_blank"]) == (
        53,
        51,
        1,
        1,
    )
    assert sorted(p.name for p in (wh.root / "requests").iterdir()) == [
        "date=2026-11-20",
        "date=2026-11-21",
    ]
    assert not any((wh.root / ".staging").iterdir())


def test_same_content_under_another_name_is_not_ingested_twice(
    tmp_path: Path, wh: Warehouse
) -> None:
    a = tmp_path / "a.log"
    a.write_bytes(b"".join(line(i) for i in range(10)))
    b = tmp_path / "copy-with-other-name.log"
    shutil.copy(a, b)
    assert ingest(a, wh).status == "ingested"
    r = ingest(b, wh)
    assert r.status == "duplicate" and "a.log" in (r.note or "")
    assert count(wh, "SELECT count(*) FROM requests") == 10


def test_a_grown_file_replaces_its_shorter_version(tmp_path: Path, wh: Warehouse) -> None:
    f = tmp_path / "access.log"
    f.write_bytes(b"".join(line(i) for i in range(10)))
    first = ingest(f, wh)
    with f.open("ab") as out:
        out.write(b"".join(line(i) for i in range(10, 25)))
    second = ingest(f, wh)
    assert second.supersedes == first.file_id
    assert count(wh, "SELECT count(*) FROM requests") == 25
    assert count(wh, "SELECT count(*) FROM ingested_files") == 1
    assert not list((wh.root / "requests").glob(f"*/{first.file_id}.parquet"))


def test_a_rotated_file_with_new_content_is_a_new_file(tmp_path: Path, wh: Warehouse) -> None:
    f = tmp_path / "access.log"
    f.write_bytes(b"".join(line(i) for i in range(10)))
    ingest(f, wh)
    f.rename(tmp_path / "access.log.1")
    f.write_bytes(b"".join(line(i, day=21) for i in range(5)))
    assert ingest(f, wh).supersedes is None
    assert ingest(tmp_path / "access.log.1", wh).status == "duplicate"
    assert count(wh, "SELECT count(*) FROM requests") == 15


def test_truncated_gzip_keeps_every_line_before_the_break(tmp_path: Path, wh: Warehouse) -> None:
    data = b"".join(line(i) for i in range(2000))
    whole = gzip.compress(data)
    f = tmp_path / "cut.log.gz"
    f.write_bytes(whole[: len(whole) // 2])
    r = ingest(f, wh)
    assert r.note and "ends early" in r.note
    assert r.balanced and r.rows_parsed > 100
    # every parsed line is one of the originals, in order from the first
    con = wh.connect(read_only=True)
    got = con.sql("SELECT line_no, bytes FROM requests ORDER BY line_no").fetchall()
    con.close()
    assert got == [(i + 1, i) for i in range(len(got))]


def test_complete_gzip_multi_member_and_zstd_read_without_warnings(
    tmp_path: Path, wh: Warehouse
) -> None:
    import zstandard

    data = b"".join(line(i) for i in range(3000))
    f = tmp_path / "two-members.gz"
    f.write_bytes(gzip.compress(data[:100_000]) + gzip.compress(data[100_000:]))
    r = ingest(f, wh)
    assert (r.note, r.rows_parsed) == (None, 3000)
    z = tmp_path / "a.zst"
    z.write_bytes(zstandard.ZstdCompressor().compress(data + line(5000)))
    r = ingest(z, wh)
    assert (r.note, r.rows_parsed) == (None, 3001)
    cut = tmp_path / "cut.zst"
    cut.write_bytes(z.read_bytes()[:-200])
    r = ingest(cut, wh)
    assert r.note and "ends early" in r.note and r.balanced


def test_empty_file_and_unknown_format(tmp_path: Path, wh: Warehouse) -> None:
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    r = ingest(empty, wh)
    assert (r.lines_total, r.rows_parsed, r.rows_rejected) == (0, 0, 0)
    junk = tmp_path / "notes.txt"
    junk.write_text("dear diary\nthis is not a log\n")
    with pytest.raises(InputError, match="notes.txt: unknown log format"):
        ingest(junk, wh)


def test_ten_megabyte_line_is_rejected_not_fatal(tmp_path: Path, wh: Warehouse) -> None:
    f = tmp_path / "long.log"
    f.write_bytes(line(1) + b"x" * (10 << 20) + b"\n" + line(2))
    r = ingest(f, wh)
    assert (r.lines_total, r.rows_parsed, r.reject_reasons) == (3, 2, {"line_too_long": 1})
    con = wh.connect(read_only=True)
    (raw_len,) = con.sql("SELECT length(raw) FROM rejects").fetchall()[0]
    con.close()
    assert raw_len <= 4096


def test_no_raw_ip_anywhere_in_the_warehouse(tmp_path: Path, wh: Warehouse) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(
        line(1, ip="203.0.113.77")
        + b"oops 203.0.113.77 was here\n"
        + line(2, ip="2001:db8:abcd:12::5")
    )
    ingest(f, wh)
    blobs = b"".join(p.read_bytes() for p in wh.root.rglob("*") if p.is_file())
    for needle in (b"203.0.113.77", b"2001:db8:abcd:12::5", b"2001:db8:abcd:12:"):
        assert needle not in blobs
    assert count(wh, "SELECT count(*) FROM requests WHERE client_net = '203.0.113.0/24'") == 1


def test_duckdb_shell_1_5_opens_the_warehouse(tmp_path: Path, wh: Warehouse) -> None:
    # maintainers open warehouse.duckdb with the duckdb-cli shell (1.5.x)
    f = tmp_path / "a.log"
    f.write_bytes(b"".join(line(i) for i in range(7)))
    ingest(f, wh)
    out = subprocess.run(
        [str(BIN / "duckdb"), "-csv", str(wh.db_path), "-c", "SELECT count(*) AS n FROM requests"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["n", "7"]


def test_views_are_typed_even_when_empty(wh: Warehouse) -> None:
    wh.refresh_views()
    con = wh.connect(read_only=True)
    cols = dict(
        con.sql(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'requests'"
        ).fetchall()
    )
    con.close()
    assert cols["ts"] == "TIMESTAMP WITH TIME ZONE" and cols["status"] == "SMALLINT"


def test_views_change_whole_or_not_at_all(monkeypatch: pytest.MonkeyPatch, wh: Warehouse) -> None:
    import duckdb

    good = wh.view_statements
    broken = lambda: [*good(), "CREATE OR REPLACE VIEW requests AS SELECT nonsense"]  # noqa: E731
    monkeypatch.setattr(wh, "view_statements", broken)
    # A new database that fails half way never appears (a killed first ingest is the same case:
    # a reader must not open a database without its views).
    (wh.root / f".{wh.db_path.name}.0ld.tmp").parent.mkdir(parents=True)
    (wh.root / f".{wh.db_path.name}.0ld.tmp").write_bytes(b"left by a killed writer")
    with pytest.raises(duckdb.Error):
        wh.refresh_views()
    assert not wh.db_path.exists()
    assert not (wh.root / f".{wh.db_path.name}.0ld.tmp").exists()
    monkeypatch.setattr(wh, "view_statements", good)
    wh.refresh_views()
    # An existing database keeps its views as they were when a change fails half way.
    half = ["CREATE OR REPLACE VIEW requests AS SELECT 1 AS x", *broken()[-1:]]
    monkeypatch.setattr(wh, "view_statements", lambda: half)
    with pytest.raises(duckdb.Error):
        wh.refresh_views()
    con = wh.connect(read_only=True)
    assert con.sql("SELECT count(*) AS n, max(status) AS s FROM requests").fetchall() == [(0, None)]
    con.close()
    assert [p.name for p in wh.root.glob(".*.tmp*")] == []


def test_parquet_files_follow_the_schema(tmp_path: Path, wh: Warehouse) -> None:
    from pipeline.schema import REQUESTS

    f = tmp_path / "a.log"
    f.write_bytes(line(1))
    ingest(f, wh)
    (part,) = list((wh.root / "requests").rglob("*.parquet"))
    assert pl.read_parquet(part, hive_partitioning=False).schema == REQUESTS


def test_row_group_statistics_where_queries_can_skip(tmp_path: Path, wh: Warehouse) -> None:
    import pyarrow.parquet as pq

    f = tmp_path / "a.log"
    f.write_bytes(b"".join(line(i) for i in range(50)))
    ingest(f, wh)
    (part,) = list((wh.root / "requests").rglob("*.parquet"))
    group = pq.ParquetFile(part).metadata.row_group(0)
    stats = {
        group.column(i).path_in_schema: group.column(i).statistics for i in range(group.num_columns)
    }
    assert stats["ts"] is not None and stats["ts"].has_min_max
    assert stats["line_no"].min == 1 and stats["line_no"].max == 50
    # A mirror log has no cache state: the null count says the whole row group can be skipped.
    assert stats["cache_state"].null_count == 50
    assert stats["arch"].has_min_max and stats["arch"].min == "x86_64"
    # Free text: min and max span every row group; not worth computing.
    assert stats["user_agent"] is None and stats["path"] is None


def test_branch_status_macro(tmp_path: Path, wh: Warehouse) -> None:
    # supported vs end-of-life at the request date; latest-stable resolved first
    f = tmp_path / "a.log"
    f.write_bytes(
        b'198.51.100.1 - - [20/Nov/2026:10:00:00 +0000] "GET /alpine/v3.15/main/x86/APKINDEX.tar.gz HTTP/1.1" 304 0 "-" "libfetch/2.0"\n'
        b'198.51.100.1 - - [20/Nov/2026:10:00:00 +0000] "GET /alpine/v3.22/main/x86/APKINDEX.tar.gz HTTP/1.1" 304 0 "-" "libfetch/2.0"\n'
        b'198.51.100.1 - - [20/Nov/2026:10:00:00 +0000] "GET /alpine/latest-stable/main/x86/APKINDEX.tar.gz HTTP/1.1" 304 0 "-" "libfetch/2.0"\n'
        b'198.51.100.1 - - [20/Nov/2026:10:00:00 +0000] "GET /alpine/edge/main/x86/APKINDEX.tar.gz HTTP/1.1" 304 0 "-" "libfetch/2.0"\n'
        b'198.51.100.1 - - [20/Nov/2026:10:00:00 +0000] "GET /alpine/v9.9/main/x86/APKINDEX.tar.gz HTTP/1.1" 304 0 "-" "libfetch/2.0"\n'
    )
    ingest(f, wh)
    con = wh.connect(read_only=True)
    rows = con.sql(
        "SELECT branch, branch_resolved, branch_status(branch_resolved, date) FROM requests ORDER BY line_no"
    ).fetchall()
    con.close()
    assert rows == [
        ("v3.15", "v3.15", "end-of-life"),
        ("v3.22", "v3.22", "supported"),
        ("latest-stable", "v3.24", "supported"),
        ("edge", "edge", "supported"),
        ("v9.9", "v9.9", "unknown"),
    ]


def test_the_manifest_is_merged_and_reads_the_same(tmp_path: Path, wh: Warehouse) -> None:
    from pipeline.warehouse.store import MANIFEST_MERGE_AT

    for i in range(MANIFEST_MERGE_AT + 3):
        f = tmp_path / f"day-{i}.log"
        f.write_bytes(line(i, day=1 + i % 28) + line(i + 1000, day=1 + i % 28))
        ingest(f, wh)
    files = sorted(p.name for p in (wh.root / "ingested_files").glob("*.parquet"))
    assert len(files) < MANIFEST_MERGE_AT  # merged once past the bound, then grows again
    assert any(name.startswith("merged-") for name in files)
    m = wh.current_manifest()
    assert m.height == MANIFEST_MERGE_AT + 3 and m["file_id"].n_unique() == m.height
    assert count(wh, "SELECT count(*) FROM ingested_files") == MANIFEST_MERGE_AT + 3
    assert count(wh, "SELECT count(*) FROM requests") == 2 * (MANIFEST_MERGE_AT + 3)
    # a file whose row sits in the merged file is still recognised, and forcing it adds no row
    first = tmp_path / "day-0.log"
    assert ingest(first, wh).status == "duplicate"
    ingest(first, wh, force=True)
    assert count(wh, "SELECT count(*) FROM ingested_files") == MANIFEST_MERGE_AT + 3
    assert wh.current_manifest().height == MANIFEST_MERGE_AT + 3
    assert count(wh, "SELECT count(*) FROM requests") == 2 * (MANIFEST_MERGE_AT + 3)
    # the next merge keeps only the newer row of the forced file
    with wh.lock():
        wh.merge_manifest(at=0)
    raw = pl.read_parquet(next((wh.root / "ingested_files").glob("merged-*.parquet")))
    assert raw.height == raw["file_id"].n_unique() == MANIFEST_MERGE_AT + 3


def test_a_crash_inside_a_merge_counts_no_row_twice(tmp_path: Path, wh: Warehouse) -> None:
    for i in range(3):
        f = tmp_path / f"{i}.log"
        f.write_bytes(line(i, day=20 + i))
        ingest(f, wh)
    folder = wh.root / "ingested_files"
    before = sorted(folder.glob("*.parquet"))
    # the merged file is written, then the process dies before removing the files it replaces
    merged = pl.concat([pl.read_parquet(p) for p in before])
    merged.write_parquet(folder / "merged-crashed.parquet")
    assert wh.current_manifest().height == 3
    assert count(wh, "SELECT count(*) FROM ingested_files") == 3
    assert count(wh, "SELECT count(*) FROM requests") == 3
    with wh.lock():
        wh.merge_manifest(at=0)
    assert [p.name.startswith("merged-") for p in folder.glob("*.parquet")] == [True]
    assert wh.current_manifest().height == 3


def test_views_match_columns_by_name_only_once_schemas_differ(
    tmp_path: Path, wh: Warehouse
) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(line(1))
    b.write_bytes(line(2, ip="203.0.113.9"))
    ingest(a, wh)

    def requests_view() -> str:
        return next(s for s in wh.view_statements() if "VIEW requests AS" in s)

    assert "union_by_name" not in requests_view()
    ingest_file(b, wh, Settings(keep_raw_ip=True), ip_key=KEY)  # adds a client_ip column
    assert "union_by_name = true" in requests_view()
    con = wh.connect(read_only=True)
    try:
        rows = con.sql("SELECT line_no, client_ip FROM requests ORDER BY bytes").fetchall()
    finally:
        con.close()
    assert rows == [(1, None), (1, "203.0.113.9")]


def test_an_aggregate_built_with_new_columns_still_reads_old_partitions(
    tmp_path: Path, wh: Warehouse
) -> None:
    from pipeline.warehouse import aggregates

    f = tmp_path / "a.log"
    f.write_bytes(line(1) + line(2))
    ingest(f, wh)
    old = wh.root / "daily_traffic" / "date=2026-11-19" / "part.parquet"
    old.parent.mkdir(parents=True)
    pl.DataFrame({"source": ["mirror"], "requests": [5]}).write_parquet(old)  # an older SQL's shape
    aggregates.build_daily_traffic(wh, dt.date(2026, 11, 20))
    assert (wh.root / "daily_traffic" / ".mixed-schema").exists()
    assert count(wh, "SELECT sum(requests) FROM daily_traffic") == 7
    assert count(wh, "SELECT count(*) FROM daily_traffic WHERE arch IS NULL") == 1


def test_aggregates_read_only_their_partitions(tmp_path: Path, wh: Warehouse) -> None:
    from pipeline.warehouse import aggregates, queries

    for day in (16, 17, 23):
        f = tmp_path / f"{day}.log"
        f.write_bytes(line(1, day=day) + line(2, day=day))
        ingest(f, wh)
    aggregates.build_daily_traffic(wh, dt.date(2026, 11, 16))
    # An unreadable file in an older partition: the whole-warehouse view reads the first file
    # it lists to bind, and fails; the aggregates never list it.
    junk = wh.root / "requests" / "date=2025-01-01" / "junk.parquet"
    junk.parent.mkdir()
    junk.write_bytes(b"not parquet")
    with pytest.raises(Exception, match="junk.parquet"):
        queries.run(wh.root, "SELECT count(*) FROM requests WHERE date = DATE '2026-11-16'")
    for day in (17, 20):  # the 20th has no file: an empty aggregate, typed
        aggregates.build_daily_traffic(wh, dt.date(2026, 11, day))
    junk.unlink()
    aggregates.build_daily_traffic(wh, dt.date(2026, 11, 23))
    assert count(wh, "SELECT sum(requests) FROM daily_traffic") == 6
    assert count(wh, "SELECT count(*) FROM daily_traffic WHERE date = '2026-11-20'") == 0
    (wh.root / "daily_traffic" / "date=2026-11-23" / "part.parquet").write_bytes(b"not parquet")
    week = aggregates.build_weekly_traffic(wh, dt.date(2026, 11, 16))  # never opens the 23rd
    assert week.requests == 4
    empty = aggregates.build_weekly_traffic(wh, dt.date(2026, 11, 2))  # no day built that week
    assert empty.rows == 0


def test_a_duplicate_ingest_still_clears_what_a_killed_one_left(
    tmp_path: Path, wh: Warehouse
) -> None:
    f = tmp_path / "a.log"
    f.write_bytes(line(1))
    ingest(f, wh)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    stale = wh.root / ".staging" / f"{dead.stdout.decode().strip()}-x-1234"
    (stale / "requests").mkdir(parents=True)
    assert ingest(f, wh).status == "duplicate"
    assert not any((wh.root / ".staging").iterdir())


@pytest.mark.parametrize("entry", ["pipeline.cli", "assets.definitions"])
def test_polars_allocator_setting_is_in_place_before_polars_loads(entry: str) -> None:
    # jemalloc reads its settings once, when polars is first imported: the package must set them
    # before that, whichever way the process starts (the CLI, a Dagster code location).
    spy = (
        "import os, sys\n"
        "seen = []\n"
        "class Spy:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'polars' and not seen:\n"
        "            seen.append(os.environ.get('_RJEM_MALLOC_CONF'))\n"
        "sys.meta_path.insert(0, Spy())\n"
        f"import {entry}\n"
        "import polars\n"  # if the entry point has not already
        "print(seen)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    out = subprocess.run(
        [sys.executable, "-c", spy], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert out.strip() == "['dirty_decay_ms:10000,muzzy_decay_ms:10000']"
