"""The landing location: a local folder, or an object store read through pyarrow's filesystems.

`DLCDN_LANDING` is a path or a URI such as
`s3://alpine-logs/dl-cdn?endpoint_override=minio.internal:9000&scheme=http` (credentials from the
usual AWS_* environment variables). Files are named by their path relative to the location; an
object is ingested from a local temporary copy streamed in blocks, so memory stays bounded and
the parser reads it exactly as a local file (same fingerprint, same accounting).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pyarrow.fs as pafs

from pipeline.ingest.fingerprint import file_fingerprint, fingerprint
from pipeline.ingest.reader import BLOCK_BYTES, InputError

# `dlcdn generate` marks each folder it writes with this file, for people to see: it is not a log,
# so ingest and the landing sensor pass over it (and say so) rather than fail on it. A file of
# that name counts as the marker only if it begins as the marker does.
MARKER_NAME = "SYNTHETIC.txt"
MARKER_HEAD = b"SYNTHETIC DATA."


def is_marker(name: str, head: bytes) -> bool:
    """Whether a file (its name, its first bytes) is the synthetic-data marker."""
    return PurePosixPath(name).name == MARKER_NAME and head.startswith(MARKER_HEAD)


def local_marker(path: Path) -> bool:
    """`is_marker` for a local file."""
    if path.name != MARKER_NAME:
        return False
    try:
        with open(path, "rb") as f:
            return is_marker(path.name, f.read(len(MARKER_HEAD)))
    except OSError:
        return False


@dataclass(frozen=True)
class LandingFile:
    rel: str  # path relative to the landing location, with '/' separators
    size: int
    mtime_ns: int


class Landing:
    """Lists, fingerprints and opens the files of a landing location."""

    def __init__(self, location: str | Path) -> None:
        self.location = str(location)
        self.remote = "://" in self.location
        if self.remote:
            try:
                self.fs, root = pafs.FileSystem.from_uri(self.location)
            except (ValueError, OSError) as e:
                raise InputError(f"DLCDN_LANDING={self.location}: cannot open ({e})") from None
            self.root = root.rstrip("/")
        else:
            self.fs = pafs.LocalFileSystem()
            self.root = str(Path(self.location).absolute())

    def __repr__(self) -> str:
        return f"Landing({self.location!r})"

    def files(self) -> list[LandingFile]:
        """Every file below the location, hidden ones and the synthetic-data marker excepted,
        sorted by name."""
        try:
            infos = self.fs.get_file_info(
                pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
            )
        except OSError as e:
            raise InputError(f"DLCDN_LANDING={self.location}: cannot list ({e})") from None
        out = []
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            rel = str(PurePosixPath(info.path).relative_to(self.root))
            if any(part.startswith(".") for part in rel.split("/")):
                continue
            if PurePosixPath(rel).name == MARKER_NAME and self._is_marker(rel):
                continue
            mtime = info.mtime_ns if info.mtime_ns is not None else 0
            out.append(LandingFile(rel, info.size or 0, mtime))
        return sorted(out, key=lambda f: f.rel)

    def _is_marker(self, rel: str) -> bool:
        try:
            with self.fs.open_input_stream(f"{self.root}/{rel}") as f:
                return is_marker(rel, f.read(len(MARKER_HEAD)))
        except OSError:
            return False

    def local_path(self, rel: str) -> Path | None:
        return None if self.remote else Path(self.root) / rel

    def fingerprint(self, rel: str) -> str:
        """The content fingerprint, the same as `file_fingerprint` of a local copy."""
        local = self.local_path(rel)
        if local is not None:
            return file_fingerprint(local)[0]
        with self.fs.open_input_stream(f"{self.root}/{rel}") as f:
            return fingerprint(f)[0]

    @contextlib.contextmanager
    def open_local(self, rel: str) -> Iterator[Path]:
        """A local path with the file's bytes: the file itself, or a temporary copy of an object."""
        local = self.local_path(rel)
        if local is not None:
            if not local.is_file():
                raise InputError(f"{local}: no such landing file")
            yield local
            return
        with tempfile.TemporaryDirectory(prefix="dlcdn-landing-") as tmp:
            dest = Path(tmp) / PurePosixPath(rel).name
            try:
                with (
                    self.fs.open_input_stream(f"{self.root}/{rel}") as src,
                    open(dest, "wb") as out,
                ):
                    shutil.copyfileobj(src, out, BLOCK_BYTES)
            except OSError as e:
                raise InputError(f"{self.location}/{rel}: cannot read ({e})") from None
            yield dest
