"""Ingest log files into the warehouse: the code `dlcdn ingest` and the Dagster assets both run.

Per file: fingerprint the content (the `file_id`), skip content already ingested, detect the format,
stream batches through the parser into staged Parquet, then commit atomically with a manifest row.
For every file `lines_total = lines_blank + rows_parsed + rows_rejected`.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import functools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import polars as pl

from pipeline import dates
from pipeline.faults import crash_point
from pipeline.ingest import enrich, parse
from pipeline.ingest.fingerprint import file_fingerprint
from pipeline.ingest.formats import FASTLY, FastlyFormat, LogFormat, detect_format, resolve_format
from pipeline.ingest.reader import (
    Batch,
    InputError,
    ReadState,
    iter_batches,
    sample_lines,
)
from pipeline.schema import INGESTED_FILES, RAW_IP_COLUMN, REJECTS, REQUESTS
from pipeline.settings import Settings
from pipeline.warehouse.store import PartitionWriter, StagedFile, Warehouse, new_staging

# Rejects before the file's first parsed line wait for its date; past this many they take the
# ingest date, so that a file of garbage cannot hold memory.
MAX_PENDING_REJECTS = 100_000

# Two parser threads match the two cores of the reference server; two batches of 8 MiB in flight
# keep peak memory bounded whatever the file (most of it is allocator caches, the fact caches and
# the mapped GeoIP database; docs/performance.md has the figures).
PARSE_THREADS = 2
PARSE_AHEAD = 2

Progress = Callable[[int, int], None]  # (lines so far, decompressed bytes so far)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc (musl, macOS): no such heap to trim
        return None


def release_free_heap() -> None:
    """Returns the free pages inside glibc's heap to the system (elsewhere: nothing to do).

    Blocks of 8 MiB and the arrays built on them come and go in the C heap, which fragments it:
    pages freed between live allocations stay resident, and without a trim after each batch RSS
    grows with the input. Trimming less often, or a fixed mmap threshold instead, cost memory or
    time (docs/performance.md).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@dataclass
class IngestResult:
    """What happened to one file: the accounting `dlcdn ingest` prints and assets put in metadata."""

    path: str
    status: str  # ingested | duplicate
    file_id: str
    format: str = ""
    bytes: int = 0
    lines_total: int = 0
    lines_blank: int = 0
    rows_parsed: int = 0
    rows_rejected: int = 0
    first_ts: dt.datetime | None = None
    last_ts: dt.datetime | None = None
    dates: list[dt.date] = field(default_factory=list)
    reject_reasons: dict[str, int] = field(default_factory=dict)
    note: str | None = None
    supersedes: str | None = None
    seconds: float = 0.0

    @property
    def balanced(self) -> bool:
        return self.lines_total == self.lines_blank + self.rows_parsed + self.rows_rejected

    def count(self, lines: int, rows: enrich.Rows) -> None:
        """Adds one batch of `lines` lines, and the rows they became, to the accounting."""
        self.lines_total += lines
        self.lines_blank += rows.blank
        self.rows_parsed += rows.requests.height
        self.rows_rejected += rows.rejects.height
        if rows.requests.height:
            lo = cast(dt.datetime, rows.requests["ts"].min())
            hi = cast(dt.datetime, rows.requests["ts"].max())
            self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
            self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)
        for reason, n in rows.rejects.group_by("reason").len().iter_rows():
            self.reject_reasons[reason] = self.reject_reasons.get(reason, 0) + n


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Files named, and the files under directories named (sorted, hidden files skipped)."""
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts):
                    yield f
        elif p.exists():
            yield p
        else:
            raise InputError(f"{p}: no such file or directory")


def default_source(fmt: LogFormat) -> str:
    return "fastly" if isinstance(fmt, FastlyFormat) else "mirror"


def ingest_file(
    path: Path,
    wh: Warehouse,
    settings: Settings,
    fmt_spec: str = "auto",
    source: str | None = None,
    geo: enrich.Geolocator | None = None,
    ip_key: bytes | None = None,
    force: bool = False,
    progress: Progress | None = None,
    name: str | None = None,
) -> IngestResult:
    """Parses one file into the warehouse (or recognises its content as already there).

    `name` is the file's name in the manifest (default: the path's; a landing object ingested from
    a temporary copy passes its own).
    """
    started = time.monotonic()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    name = name or path.name
    size = path.stat().st_size
    # What a killed ingest left in staging goes first, whether or not this file is new: a kill
    # after the last commit but before its staging folder was removed leaves nothing to re-ingest.
    wh.clean_staging()
    known = _identify(wh, path, name, size)
    if known.same is not None and not force:
        return _duplicate(path, known, size, started)
    fmt = _file_format(path, fmt_spec, settings)
    ctx = enrich.Context(
        file_id=known.file_id,
        source=source or default_source(fmt),
        fmt=fmt,
        ip_key=ip_key if ip_key is not None else enrich.ip_key(settings),
        geo=geo,
        keep_raw_ip=settings.keep_raw_ip,
    )
    result = IngestResult(
        str(path),
        "ingested",
        known.file_id,
        format=fmt.name,
        bytes=size,
        supersedes=known.supersedes,
    )
    staged = new_staging(wh, known.file_id)
    state = _write_rows(path, staged, ctx, result, progress)
    result.note = state.damage()
    result.seconds = time.monotonic() - started
    crash_point("ingest:staged")
    wh.commit(staged, _manifest_row(result, name, ctx.source))
    return result


@dataclass(frozen=True)
class _Known:
    """What the manifest knows of a file's content."""

    file_id: str
    same: dict[str, Any] | None  # the manifest row of the same content, if it is there
    supersedes: str | None  # the file_id of a shorter version of the same log (a grown file)


def _identify(wh: Warehouse, path: Path, name: str, size: int) -> _Known:
    """Fingerprints the file, and of the prefixes a grown file would share with the versions of
    the same name already ingested."""
    manifest = wh.current_manifest()
    grown_from = manifest.filter((pl.col("name") == name) & (pl.col("bytes") < size))
    file_id, prefixes = file_fingerprint(path, tuple(grown_from["bytes"].to_list()))
    same = manifest.filter(pl.col("file_id") == file_id)
    supersedes = None
    for row in grown_from.iter_rows(named=True):
        if prefixes.get(row["bytes"]) == row["file_id"]:
            supersedes = row["file_id"]  # the same log, grown since: replace the shorter version
    return _Known(file_id, None if same.is_empty() else same.row(0, named=True), supersedes)


def _duplicate(path: Path, known: _Known, size: int, started: float) -> IngestResult:
    assert known.same is not None
    return IngestResult(
        str(path),
        "duplicate",
        known.file_id,
        format=known.same["format"],
        bytes=size,
        note=f"same content as {known.same['name']}, ingested {known.same['ingested_at']:%Y-%m-%d %H:%M} UTC",
        seconds=time.monotonic() - started,
    )


def _file_format(path: Path, fmt_spec: str, settings: Settings) -> LogFormat:
    """The format `fmt_spec` names, or the one detected from the file's first lines."""
    fmt = resolve_format(fmt_spec, settings.fastly_keys)
    if fmt is not None:
        return fmt
    fastly = (
        FastlyFormat("fastly", keys={**FASTLY.keys, **settings.fastly_keys})
        if settings.fastly_keys
        else FASTLY
    )
    return detect_format(str(path), sample_lines(path), fastly=fastly)


def _write_rows(
    path: Path,
    staged: StagedFile,
    ctx: enrich.Context,
    result: IngestResult,
    progress: Progress | None,
) -> ReadState:
    """Streams the file's batches through the parser into the staged Parquet, counting them in
    `result`; returns what the reader learned of the file (a truncated stream)."""
    req_schema = REQUESTS
    if ctx.keep_raw_ip:
        req_schema = pl.Schema([*REQUESTS.items(), RAW_IP_COLUMN])
        staged.extra_columns.add("requests")
    requests = PartitionWriter(staged, "requests", req_schema)
    rejects = PartitionWriter(staged, "rejects", REJECTS)
    state = ReadState()
    reject_dates = _RejectDates()
    done_bytes = 0
    for n, nbytes, rows in _parsed_in_order(iter_batches(path, state), ctx):
        release_free_heap()
        result.count(n, rows)
        requests.write(rows.requests)
        rejects.write(reject_dates.assign(rows.rejects, rows.requests))
        crash_point("ingest:batch")
        done_bytes += nbytes
        if progress is not None:
            progress(result.lines_total, done_bytes)
    rejects.write(reject_dates.flush())
    written = set(requests.close()) | set(rejects.close())
    result.dates = sorted(dt.date.fromisoformat(d) for d in written)
    result.reject_reasons = dict(sorted(result.reject_reasons.items()))
    return state


def batch_rows(batch: Batch, ctx: enrich.Context) -> enrich.Rows:
    """One batch of lines parsed and enriched into warehouse rows."""
    return enrich.enrich(parse.parse_lines(batch, ctx.fmt), ctx)


def _parsed_in_order(
    batches: Iterator[Batch], ctx: enrich.Context
) -> Iterator[tuple[int, int, enrich.Rows]]:
    """Parses batches two at a time (polars releases the GIL, and most string kernels run on one
    core per call), yielding results in file order; at most PARSE_AHEAD batches are in memory."""
    with ThreadPoolExecutor(max_workers=PARSE_THREADS, thread_name_prefix="dlcdn-parse") as pool:
        window: deque[tuple[int, int, Future[enrich.Rows]]] = deque()
        for batch in batches:
            window.append(
                (len(batch.lines), batch.lines.nbytes, pool.submit(batch_rows, batch, ctx))
            )
            if len(window) >= PARSE_AHEAD:
                n, nbytes, fut = window.popleft()
                yield n, nbytes, fut.result()
        while window:
            n, nbytes, fut = window.popleft()
            yield n, nbytes, fut.result()


class _RejectDates:
    """Gives each reject the date of the nearest parsed line before it (logs are in time order).

    Rejects before the file's first parsed line take the date of the first one; if the file has
    none at all, the ingest date.
    """

    def __init__(self) -> None:
        self.last: dt.date | None = None
        self.pending: list[pl.DataFrame] = []
        self.pending_rows = 0

    def assign(self, rejects: pl.DataFrame, requests: pl.DataFrame) -> pl.DataFrame:
        marks = requests.select("line_no", "date")
        out = pl.DataFrame(schema=REJECTS)
        if not rejects.is_empty():
            dated = rejects.join_asof(marks, on="line_no", strategy="backward")
            if self.last is not None:
                dated = dated.with_columns(pl.col("date").fill_null(self.last))
            if not marks.is_empty():
                ahead = rejects.join_asof(marks, on="line_no", strategy="forward")["date"]
                dated = dated.with_columns(pl.col("date").fill_null(ahead))
            known = dated.filter(pl.col("date").is_not_null())
            unknown = dated.filter(pl.col("date").is_null())
            out = known
            if not unknown.is_empty():
                self.pending.append(unknown)
                self.pending_rows += unknown.height
        if not marks.is_empty():
            self.last = marks["date"][-1]
            first = marks["date"][0]
            if self.pending:
                out = pl.concat([self._release(first), out], how="diagonal_relaxed")
        elif self.pending_rows > MAX_PENDING_REJECTS:
            out = pl.concat([self._release(dates.today_utc()), out], how="diagonal_relaxed")
        return out.select(list(REJECTS)) if not out.is_empty() else out

    def _release(self, day: dt.date) -> pl.DataFrame:
        frames = [f.with_columns(pl.lit(day).alias("date")) for f in self.pending]
        self.pending, self.pending_rows = [], 0
        return pl.concat(frames).select(list(REJECTS))

    def flush(self) -> pl.DataFrame:
        if not self.pending:
            return pl.DataFrame(schema=REJECTS)
        return self._release(self.last or dates.today_utc())


def _manifest_row(result: IngestResult, name: str, source: str) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "file_id": result.file_id,
                "name": name,
                "format": result.format,
                "source": source,
                "bytes": result.bytes,
                "lines_total": result.lines_total,
                "lines_blank": result.lines_blank,
                "rows_parsed": result.rows_parsed,
                "rows_rejected": result.rows_rejected,
                "first_ts": result.first_ts,
                "last_ts": result.last_ts,
                "ingested_at": dt.datetime.now(dt.UTC),
                "dates": result.dates,
                "note": result.note,
                "supersedes": result.supersedes,
            }
        ],
        schema=INGESTED_FILES,
    )
