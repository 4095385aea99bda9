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
from typing import cast

import polars as pl

from pipeline.ingest import enrich, parse
from pipeline.ingest.formats import FASTLY, FastlyFormat, LogFormat, detect_format, resolve_format
from pipeline.ingest.reader import (
    Batch,
    InputError,
    ReadState,
    file_fingerprint,
    iter_batches,
    sample_lines,
)
from pipeline.schema import RAW_IP_COLUMN, REJECTS, REQUESTS
from pipeline.settings import Settings
from pipeline.warehouse.store import PartitionWriter, Warehouse, new_staging

# Rejects before the file's first parsed line wait for its date; past this many they take the
# ingest date, so that a file of garbage cannot hold memory.
MAX_PENDING_REJECTS = 100_000

# Two parser threads match the two cores of the reference server; two batches of 8 MiB in flight
# keep peak RSS under 1 GiB (most of it allocator caches, the fact caches and the mapped GeoIP
# database; see README.md, "Performance and scale").
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
    pages freed between live allocations stayed resident, and RSS grew with the input (906 ->
    1,684 MiB from the first tenth to the end of a 234M-line file; trimmed after each batch,
    791 -> 910 MiB, peak 964). A fixed mmap threshold kept RSS as flat, but mapping every large
    buffer afresh cost 14% of the Fastly ingest. A trim after each batch cost ~5% there while
    the reader copied every block; now that it does not, nothing measurable (29.1 s with, 29.6
    without, one run each). A trim every 4th batch peaked above 1 GiB.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@dataclass
class FileReport:
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
    geo: parse.Geolocator | None = None,
    ip_key: bytes | None = None,
    force: bool = False,
    progress: Progress | None = None,
    name: str | None = None,
) -> FileReport:
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
    manifest = wh.current_manifest()
    grown_from = manifest.filter((pl.col("name") == name) & (pl.col("bytes") < size))
    file_id, prefixes = file_fingerprint(path, tuple(grown_from["bytes"].to_list()))
    same = manifest.filter(pl.col("file_id") == file_id)
    if not same.is_empty() and not force:
        return FileReport(
            str(path),
            "duplicate",
            file_id,
            format=same["format"][0],
            bytes=size,
            note=f"same content as {same['name'][0]}, ingested {same['ingested_at'][0]:%Y-%m-%d %H:%M} UTC",
            seconds=time.monotonic() - started,
        )
    supersedes = None
    for row in grown_from.iter_rows(named=True):
        if prefixes.get(row["bytes"]) == row["file_id"]:
            supersedes = row["file_id"]  # the same log, grown since: replace the shorter version

    fastly = (
        FastlyFormat("fastly", keys={**FASTLY.keys, **settings.fastly_keys})
        if settings.fastly_keys
        else FASTLY
    )
    fmt = resolve_format(fmt_spec, settings.fastly_keys)
    if fmt is None:
        fmt = detect_format(str(path), sample_lines(path), fastly=fastly)
    ctx = parse.Context(
        file_id=file_id,
        source=source or default_source(fmt),
        fmt=fmt,
        ip_key=ip_key if ip_key is not None else enrich.ip_key(settings),
        geo=geo,
        keep_raw_ip=settings.keep_raw_ip,
    )
    staged = new_staging(wh, file_id)
    req_schema = REQUESTS
    if settings.keep_raw_ip:
        req_schema = pl.Schema([*REQUESTS.items(), RAW_IP_COLUMN])
        staged.extra_columns.add("requests")
    requests = PartitionWriter(staged, "requests", req_schema)
    rejects = PartitionWriter(staged, "rejects", REJECTS)
    report = FileReport(
        str(path), "ingested", file_id, format=fmt.name, bytes=size, supersedes=supersedes
    )
    state = ReadState()
    dates = _RejectDates()
    done_bytes = 0
    reasons: dict[str, int] = {}
    for n, nbytes, parsed in _parsed_in_order(iter_batches(path, state), ctx):
        release_free_heap()
        report.lines_total += n
        report.lines_blank += parsed.blank
        report.rows_parsed += parsed.requests.height
        report.rows_rejected += parsed.rejects.height
        if parsed.requests.height:
            lo = cast(dt.datetime, parsed.requests["ts"].min())
            hi = cast(dt.datetime, parsed.requests["ts"].max())
            report.first_ts = lo if report.first_ts is None else min(report.first_ts, lo)
            report.last_ts = hi if report.last_ts is None else max(report.last_ts, hi)
        for reason, count in parsed.rejects.group_by("reason").len().iter_rows():
            reasons[reason] = reasons.get(reason, 0) + count
        requests.write(parsed.requests)
        rejects.write(dates.assign(parsed.rejects, parsed.requests))
        done_bytes += nbytes
        if progress is not None:
            progress(report.lines_total, done_bytes)
    rejects.write(dates.flush())
    written = set(requests.close()) | set(rejects.close())
    report.dates = sorted(dt.date.fromisoformat(d) for d in written)
    report.reject_reasons = dict(sorted(reasons.items()))
    if state.truncated:
        report.note = state.truncated
    report.seconds = time.monotonic() - started
    wh.commit(staged, _manifest_row(report, name, ctx.source))
    return report


def _parsed_in_order(
    batches: Iterator[Batch], ctx: parse.Context
) -> Iterator[tuple[int, int, parse.Parsed]]:
    """Parses batches two at a time (polars releases the GIL, and most string kernels run on one
    core per call), yielding results in file order; at most PARSE_AHEAD batches are in memory."""
    with ThreadPoolExecutor(max_workers=PARSE_THREADS, thread_name_prefix="dlcdn-parse") as pool:
        window: deque[tuple[int, int, Future[parse.Parsed]]] = deque()
        for batch in batches:
            window.append(
                (len(batch.lines), batch.lines.nbytes, pool.submit(parse.parse_batch, batch, ctx))
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
            out = pl.concat([self._release(parse.today_utc()), out], how="diagonal_relaxed")
        return out.select(list(REJECTS)) if not out.is_empty() else out

    def _release(self, day: dt.date) -> pl.DataFrame:
        frames = [f.with_columns(pl.lit(day).alias("date")) for f in self.pending]
        self.pending, self.pending_rows = [], 0
        return pl.concat(frames).select(list(REJECTS))

    def flush(self) -> pl.DataFrame:
        if not self.pending:
            return pl.DataFrame(schema=REJECTS)
        return self._release(self.last or parse.today_utc())


def _manifest_row(report: FileReport, name: str, source: str) -> pl.DataFrame:
    from pipeline.schema import INGESTED_FILES

    return pl.DataFrame(
        [
            {
                "file_id": report.file_id,
                "name": name,
                "format": report.format,
                "source": source,
                "bytes": report.bytes,
                "lines_total": report.lines_total,
                "lines_blank": report.lines_blank,
                "rows_parsed": report.rows_parsed,
                "rows_rejected": report.rows_rejected,
                "first_ts": report.first_ts,
                "last_ts": report.last_ts,
                "ingested_at": dt.datetime.now(dt.UTC),
                "dates": report.dates,
                "note": report.note,
                "supersedes": report.supersedes,
            }
        ],
        schema=INGESTED_FILES,
    )
