"""Files that are replaced whole, and locks across processes: the one way dlcdn writes state.

Every file another process may read (warehouse Parquet, manifest rows, the DuckDB file, the mail
outbox, the client-hash key, the GeoIP database) is written under a temporary name beside its
destination, flushed to disk, renamed over it, and the folder flushed too: a reader (or a crash)
sees the old file or the whole new one, and a rename that returned survives a power cut.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from pipeline.faults import crash_point

if TYPE_CHECKING:
    import polars as pl


def lock(path: Path) -> FileLock:
    """An exclusive lock on `path` (created if missing) for a `with` block: across processes
    (flock) and across the threads of this one; the same thread may take it again inside."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path, is_singleton=True)


def fsync_dir(folder: Path) -> None:
    """Flushes a folder's entries: a rename into it is durable only once this returns."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def temporary_name(dest: Path) -> Path:
    """A fresh hidden name beside `dest` (`.<name>.<random>.tmp`), for files made elsewhere."""
    return dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")


@contextlib.contextmanager
def atomic_path(dest: Path, *, replace: bool = True, point: str | None = None) -> Iterator[Path]:
    """Yields a temporary path beside `dest` for the caller to create and write; when the block
    ends without an exception it becomes `dest`, file and folder flushed to disk. On an exception
    the temporary file is removed and `dest` is left as it was.

    `replace=False` never overwrites: FileExistsError when `dest` exists (another process made it
    first), and the temporary file goes. `point` names the crash point (`pipeline.faults`) between
    the flushed temporary file and the rename.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(dest)
    try:
        yield tmp
        _fsync_file(tmp)
        if point is not None:
            crash_point(point)
        if replace:
            os.replace(tmp, dest)
        else:
            os.link(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(dest.parent)


def remove_temporaries(folder: Path) -> None:
    """Removes the temporary files (`temporary_name`) a killed writer left in `folder`.

    Only for a folder whose every writer holds the lock the caller holds: a temporary file there
    then belongs to no live writer.
    """
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(dest: Path, data: bytes, *, point: str | None = None) -> None:
    """Replaces `dest` with `data` (see `atomic_path`)."""
    with atomic_path(dest, point=point) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(dest: Path, text: str) -> None:
    """Replaces `dest` with `text`, UTF-8 (see `atomic_path`)."""
    atomic_write_bytes(dest, text.encode())


def atomic_write_parquet(frame: pl.DataFrame, dest: Path, *, point: str | None = None) -> None:
    """Replaces `dest` with `frame` as zstd Parquet (see `atomic_path`)."""
    with atomic_path(dest, point=point) as tmp:
        frame.write_parquet(tmp, compression="zstd")


def move(src: Path, dest: Path) -> None:
    """Renames `src` over `dest` and flushes the folders of both."""
    os.replace(src, dest)
    fsync_dir(dest.parent)
    if src.parent != dest.parent:
        fsync_dir(src.parent)
