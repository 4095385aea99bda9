"""`dlcdn verify`: the warehouse checked against its manifest.

Every Parquet file the manifest lists must be present, readable, hold the rows the manifest
recorded and have the SHA-256 recorded at commit; the rows of each ingested log must add up to its
`rows_parsed` and `rows_rejected`; and no file may sit in a table folder that no ingested log
wrote. Each problem names its file. Manifest rows written before checksums were recorded (column
`files` null) are checked for presence, readability (every page decoded) and row counts, and
listed as such.

The warehouse lock is held while it reads, so a commit waits rather than moving files under it
(ingests keep parsing meanwhile).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.ingest.reader import InputError
from pipeline.schema import INGESTED_FILES
from pipeline.warehouse.store import MIXED_SCHEMA_MARKER, Warehouse, sha256_of

TABLES = {"requests": "rows_parsed", "rejects": "rows_rejected"}  # table -> its manifest count
_DATE_DIR = re.compile(r"^date=(\d{4}-\d\d-\d\d)$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong, and the file it is wrong with (relative to the warehouse root)."""

    path: str
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


@dataclass
class Verification:
    logs: int = 0  # manifest rows (ingested logs) checked
    files: int = 0  # Parquet files checked
    progress: Callable[[int], None] | None = field(default=None, repr=False)  # files so far
    problems: list[Problem] = field(default_factory=list)
    # Files of logs ingested before checksums were recorded: checked, but not against a checksum.
    without_checksum: list[str] = field(default_factory=list)

    def count_file(self) -> None:
        self.files += 1
        if self.progress is not None:
            self.progress(self.files)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        head = f"{self.files:,} Parquet file(s) of {self.logs:,} ingested log(s)"
        if not self.problems:
            return f"{head}: all as the manifest recorded them"
        return f"{head}: {len(self.problems):,} problem(s)"


def verify(
    wh: Warehouse,
    dates: Collection[dt.date] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Verification:
    """Checks the whole warehouse, or only the partitions of `dates` (and the logs that wrote
    to them); `progress` gets the number of files checked so far."""
    if not (wh.root / "ingested_files").is_dir():
        raise InputError(f"{wh.root}: no warehouse here (no ingested_files/ folder)")
    days = None if dates is None else {d.isoformat() for d in dates}
    out = Verification(progress=progress)
    with wh.lock():
        manifest = _read_manifest(wh, out)
        current = _current(manifest)
        expected: set[str] = set()
        for row in current.iter_rows(named=True):
            if days is not None and not days & {d.isoformat() for d in row["dates"] or []}:
                continue
            out.logs += 1
            expected |= _check_log(wh, row, days, out)
        _stray_files(wh, expected, days, out)
    return out


def _read_manifest(wh: Warehouse, out: Verification) -> pl.DataFrame:
    """Every manifest row, reading its files one by one so that a damaged one is named."""
    frames = []
    for f in sorted((wh.root / "ingested_files").glob("*.parquet")):
        try:
            frames.append(
                pl.scan_parquet(f, schema=INGESTED_FILES, missing_columns="insert").collect()
            )
        except (pl.exceptions.PolarsError, OSError) as e:
            out.problems.append(
                Problem(_rel(wh, f), f"manifest file cannot be read ({_first_line(e)})")
            )
    if not frames:
        return pl.DataFrame(schema=INGESTED_FILES)
    return pl.concat(frames).sort("ingested_at").unique("file_id", keep="last")


def _current(manifest: pl.DataFrame) -> pl.DataFrame:
    """The rows whose data is visible: superseded versions (a log that grew) are not."""
    superseded = manifest["supersedes"].drop_nulls().implode()
    return manifest.filter(~pl.col("file_id").is_in(superseded)).sort("name", "file_id")


def _check_log(wh: Warehouse, row: dict, days: set[str] | None, out: Verification) -> set[str]:
    """Checks one ingested log's files; returns their paths (in scope) relative to the root."""
    if row["files"] is None:
        return _check_log_without_checksums(wh, row, days, out)
    listed = [f for f in row["files"] if days is None or _day_of(f["path"]) in days]
    for table, count in TABLES.items():
        recorded = sum(f["rows"] for f in row["files"] if f["path"].startswith(f"{table}/"))
        if recorded != row[count]:
            out.problems.append(
                Problem(
                    f"ingested_files ({row['name']}, file_id {row['file_id']})",
                    f"its {table} files hold {recorded:,} rows, its {count} says {row[count]:,}",
                )
            )
    for f in listed:
        out.count_file()
        issue = _check_file(wh.root / f["path"], f["rows"], f["sha256"])
        if issue:
            out.problems.append(Problem(f["path"], f"{issue} ({_whose(row)})"))
    return {f["path"] for f in listed}


def _check_file(path: Path, rows: int, sha256: str) -> str | None:
    if not path.is_file():
        return "missing"
    issues = []
    if sha256_of(path) != sha256:
        issues.append("its content differs from the checksum recorded at commit")
    try:
        held = pq.read_metadata(path).num_rows
    except (pa.ArrowException, OSError) as e:
        issues.append(f"cannot be read as Parquet ({_first_line(e)})")
    else:
        if held != rows:
            issues.append(f"holds {held:,} rows, the manifest recorded {rows:,}")
    return "; ".join(issues) or None


def _check_log_without_checksums(
    wh: Warehouse, row: dict, days: set[str] | None, out: Verification
) -> set[str]:
    """A row from before checksums: its files are found by name and decoded in full."""
    row_days = sorted(d.isoformat() for d in row["dates"] or [])
    in_scope = [d for d in row_days if days is None or d in days]
    found: set[str] = set()
    totals = dict.fromkeys(TABLES, 0)
    countable = in_scope == row_days  # every file of the log seen and read: totals compare
    for day in in_scope:
        paths = [f"{table}/date={day}/{row['file_id']}.parquet" for table in TABLES]
        present = [p for p in paths if (wh.root / p).is_file()]
        if not present:
            out.problems.append(Problem(paths[0], f"missing, and {paths[1]} too ({_whose(row)})"))
        for rel, table in ((p, p.split("/", 1)[0]) for p in present):
            out.count_file()
            out.without_checksum.append(rel)
            found.add(rel)
            try:
                totals[table] += pq.read_table(wh.root / rel).num_rows
            except (pa.ArrowException, OSError) as e:
                countable = False
                out.problems.append(
                    Problem(rel, f"cannot be read as Parquet ({_first_line(e)}) ({_whose(row)})")
                )
    if countable:
        for table, count in TABLES.items():
            if totals[table] != row[count]:
                out.problems.append(
                    Problem(
                        f"{table}/date=*/{row['file_id']}.parquet",
                        f"hold {totals[table]:,} rows, the manifest's {count} says "
                        f"{row[count]:,} ({_whose(row)})",
                    )
                )
    return found


def _stray_files(
    wh: Warehouse, expected: set[str], days: set[str] | None, out: Verification
) -> None:
    """Files in the table folders that no current manifest row lists."""
    for table in TABLES:
        folder = wh.root / table
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            m = _DATE_DIR.match(entry.name)
            if m is None:
                if days is None and entry.name != MIXED_SCHEMA_MARKER:
                    out.problems.append(
                        Problem(_rel(wh, entry), "stray: not a date partition of the table")
                    )
                continue
            if days is not None and m.group(1) not in days:
                continue
            for f in sorted(entry.rglob("*")):
                rel = _rel(wh, f)
                if f.is_file() and rel not in expected:
                    out.problems.append(
                        Problem(rel, "stray: no ingested log in the manifest wrote this file")
                    )


def _day_of(rel: str) -> str:
    m = _DATE_DIR.match(rel.split("/")[1])
    return m.group(1) if m else ""


def _whose(row: dict) -> str:
    return f"written for {row['name']}, file_id {row['file_id']}"


def _rel(wh: Warehouse, path: Path) -> str:
    return path.relative_to(wh.root).as_posix()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
