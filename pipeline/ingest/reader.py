"""Streaming line reader: plain, gzip or zstd files into batches of lines, in bounded memory.

A batch is an Arrow string array of whole lines (built on the decompressed buffer itself, no
per-line Python objects; the parser strips the CR/LF) plus the reasons for the lines that could
not become text (invalid UTF-8, over-long). Compression is detected by
magic bytes, not by the file name: landing files can be called anything.
"""

from __future__ import annotations

import codecs
import os
import queue
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# RFC 8878: a zstd frame's magic number, and the range of skippable frames' (little-endian).
_ZSTD_FRAME = 0xFD2FB528
_ZSTD_SKIPPABLE = range(0x184D2A50, 0x184D2A60)

BLOCK_BYTES = 8 << 20
# nginx's default large_client_header_buffers caps a request line at 8 KiB; real log lines with long
# user agents and referers reach tens of KiB. Past this a line is garbage or an attack, and keeping it
# whole would make memory depend on the input.
MAX_LINE_BYTES = 1 << 20
# How much of a rejected line is kept as `raw`.
MAX_RAW_CHARS = 4096


class InputError(Exception):
    """A whole file cannot be read (not a log, unreadable, unknown format)."""


@dataclass
class Batch:
    """Consecutive lines of one file."""

    first_line_no: int  # 1-based number of the first line in `lines`
    lines: pa.LargeStringArray  # every line with its newline; bad lines hold their lossy text
    bad: dict[int, str] = field(default_factory=dict)  # index in `lines` -> reject reason


@dataclass
class ReadState:
    """What the reader learned about the file as a whole."""

    compression: str = "none"
    bytes_read: int = 0  # compressed bytes consumed
    truncated: str | None = None  # why the stream ended early, if it did
    # The number of the last line when it has no newline. Log writers end every record with one,
    # so a file that does not was cut short (a copy or disk that ran out, a stream that broke)
    # or is still being written; the line is kept as read (parsed if it parses, else rejected).
    unterminated_line: int | None = None

    def damage(self) -> str | None:
        """What is wrong with the file as a whole, for the manifest's `note`; None if nothing."""
        found = []
        if self.truncated:
            found.append(self.truncated)
        if self.unterminated_line is not None:
            found.append(
                f"line {self.unterminated_line:,}, the last, has no newline "
                "(the file was cut short, or is still being written)"
            )
        return "; ".join(found) or None


def detect_compression(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC) or (
        len(head) >= 4 and int.from_bytes(head[:4], "little") in _ZSTD_SKIPPABLE
    ):
        return "zstd"  # a zstd stream may begin with a skippable frame (metadata)
    return "none"


def decompressed_blocks(
    path: Path, state: ReadState, block_bytes: int = BLOCK_BYTES
) -> Iterator[bytes]:
    """The file's decompressed bytes in blocks, whatever its compression.

    A compressed stream that ends early or breaks yields everything before the break and records
    why in `state.truncated`; concatenated members (gzip) and frames (zstd) are read in turn.
    Decompressed output per step is capped, so a small bomb cannot expand into memory at once.
    """
    with open(path, "rb") as f:
        state.compression = detect_compression(f.read(4))
        f.seek(0)
        if state.compression == "none":
            while block := f.read(block_bytes):
                state.bytes_read += len(block)
                yield block
            return
        if state.compression == "zstd":
            yield from _coalesced(_zstd_blocks(f, state, block_bytes), block_bytes)
            return
        yield from _coalesced(_gzip_blocks(f, state, block_bytes), block_bytes)


def _coalesced(blocks: Iterator[bytes], block_bytes: int) -> Iterator[bytes]:
    """Joins a decompressor's pieces into blocks of up to `block_bytes` (pieces never exceed it).

    One step of a decompressor yields what one read of compressed input expands to, often well
    under a block; every block becomes a parse batch, and each batch has a fixed cost, while a
    block over `block_bytes` would raise peak memory.
    """
    pending: list[bytes] = []
    size = 0
    for piece in blocks:
        if size and size + len(piece) > block_bytes:
            yield b"".join(pending)
            pending, size = [], 0
        pending.append(piece)
        size += len(piece)
    if pending:
        yield b"".join(pending)


def _gzip_blocks(f: BinaryIO, state: ReadState, block_bytes: int) -> Iterator[bytes]:
    """gzip members in bounded steps; a cut or corrupt stream ends the blocks and says why."""
    from isal import isal_zlib  # ISA-L: several times faster than zlib, same format

    dobj = isal_zlib.decompressobj(31)
    fed = False  # whether the current member's decompressor has seen any bytes
    while True:
        compressed = f.read(256 << 10)  # expands to a few MiB: _coalesced fills the blocks
        state.bytes_read += len(compressed)
        data = compressed
        while True:
            fed = fed or bool(data)
            try:
                # max_length caps what one step expands to, so a bomb stays in bounded memory;
                # a step that filled it is repeated (with no new input) to drain zlib's state.
                out = dobj.decompress(data, block_bytes)
            except (zlib.error, isal_zlib.error) as e:  # type: ignore[misc]  # untyped extension
                state.truncated = f"gzip stream is corrupt after {state.bytes_read:,} bytes ({e})"
                return
            if out:
                yield out
            if dobj.eof:
                data = dobj.unused_data  # the next gzip member, or trailing garbage
                dobj = isal_zlib.decompressobj(31)
                fed = False
                if not data:
                    break
                if not data.startswith(GZIP_MAGIC[: len(data)]):
                    state.truncated = "garbage after the gzip stream"
                    return
                continue
            data = dobj.unconsumed_tail
            if not data and len(out) < block_bytes:
                break
        if not compressed:
            if fed and not dobj.eof:
                state.truncated = f"gzip stream ends early, after {state.bytes_read:,} bytes"
            return


def _zstd_blocks(f: BinaryIO, state: ReadState, block_bytes: int) -> Iterator[bytes]:
    """zstd frames in bounded reads. python-zstandard's reader ends quietly on a cut stream, so a
    cut is found by walking the frames' structure once the data is read (`_zstd_cut`), and by the
    frame header's content size when the writer recorded it (streaming writers do not)."""
    import zstandard

    head = f.read(18)
    f.seek(0)
    try:
        expected = zstandard.get_frame_parameters(head).content_size
        if not head.startswith(ZSTD_MAGIC):
            expected = zstandard.CONTENTSIZE_UNKNOWN  # a skippable frame's own length
    except zstandard.ZstdError as e:
        state.truncated = f"zstd stream is corrupt ({e})"
        return
    reader = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True, closefd=False)
    total = 0
    try:
        while block := reader.read(block_bytes):
            total += len(block)
            yield block
    except zstandard.ZstdError as e:
        state.truncated = f"zstd stream is corrupt after {total:,} decompressed bytes ({e})"
        return
    finally:
        state.bytes_read = f.tell()
    cut = _zstd_cut(f)
    if cut is not None:
        state.truncated = f"{cut}; {total:,} bytes decompressed before it"
    elif expected != zstandard.CONTENTSIZE_UNKNOWN and total < expected:
        state.truncated = f"zstd stream ends early, after {total:,} of {expected:,} bytes"


def _zstd_cut(f: BinaryIO) -> str | None:
    """Why the file's zstd frames are not whole (cut, or followed by garbage); None if they are.

    Reads only the frame and block headers (RFC 8878: 3 bytes per block of at most 128 KiB) and
    seeks over the rest, so it costs next to nothing beside the decompression.
    """
    size = os.fstat(f.fileno()).st_size
    pos, frames = 0, 0

    def ends_early() -> str:
        return f"zstd stream ends early: frame {frames + 1} is cut at byte {size:,}"

    while pos < size:
        f.seek(pos)
        magic = f.read(4)
        if len(magic) < 4:
            return ends_early()
        number = int.from_bytes(magic, "little")
        if number in _ZSTD_SKIPPABLE:
            length = f.read(4)
            pos += 8 + int.from_bytes(length, "little")
            if len(length) < 4 or pos > size:
                return ends_early()
            continue
        if number != _ZSTD_FRAME:
            return f"garbage after the zstd stream, at byte {pos:,}"
        descriptor = f.read(1)
        if not descriptor:
            return ends_early()
        d = descriptor[0]
        single_segment = bool(d & 0x20)
        content_size_bytes = (1 if single_segment else 0, 2, 4, 8)[d >> 6]
        pos += 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[d & 3] + content_size_bytes
        while True:  # the blocks: Last_Block (bit 0), Block_Type (bits 1-2), Block_Size
            f.seek(pos)
            header = f.read(3)
            if len(header) < 3:
                return ends_early()
            bits = int.from_bytes(header, "little")
            pos += 3 + (1 if (bits >> 1) & 3 == 1 else bits >> 3)  # an RLE block holds one byte
            if bits & 1:
                break
        pos += 4 if d & 0x04 else 0  # the content checksum
        if pos > size:
            return ends_early()
        frames += 1
    return None


def prefetched(blocks: Iterator[bytes], depth: int = 2) -> Iterator[bytes]:
    """Runs a block iterator in a thread of its own, `depth` blocks ahead.

    Reads and decompression (ISA-L, zstd) release the GIL, so they run on the second core while
    the parser works.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for b in blocks:
                if not put(b):
                    return
            put(done)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(e)

    t = threading.Thread(target=pump, name="dlcdn-reader", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        t.join()


def _decode_lossy(
    chunk: bytes, arr: np.ndarray, offsets: np.ndarray
) -> tuple[bytes, np.ndarray, list[int]]:
    """Makes the lines of `chunk` valid UTF-8, returning the new bytes, offsets and the indexes of
    the bad lines (which now hold their lossy text).

    Only lines holding a byte >= 0x80 are decoded one by one (in a log, few are), so the cost is
    per non-ASCII line, not per line; the other lines keep their bytes, and their offsets move by
    what the lines before them grew.
    """
    high = np.flatnonzero(arr >= 0x80)
    lines = np.unique(np.searchsorted(offsets, high, side="right") - 1)
    view = memoryview(chunk)
    bad: list[int] = []
    growth: list[int] = []
    parts: list[bytes | memoryview] = []
    pos = 0
    for line in lines.tolist():
        start, end = int(offsets[line]), int(offsets[line + 1])
        try:
            codecs.utf_8_decode(view[start:end], "strict", True)
        except UnicodeDecodeError:
            fixed = codecs.utf_8_decode(view[start:end], "replace", True)[0].encode("utf-8")
            parts.append(view[pos:start])
            parts.append(fixed)
            bad.append(line)
            growth.append(len(fixed) - (end - start))
            pos = end
    if not bad:
        return chunk, offsets, bad
    parts.append(view[pos : int(offsets[-1])])
    shift = np.zeros(len(offsets), dtype=np.int64)
    shift[np.asarray(bad) + 1] = growth
    return b"".join(parts), offsets + np.cumsum(shift), bad


def _valid_utf8(lines: pa.LargeStringArray) -> bool:
    try:
        lines.validate(full=True)  # Arrow's vectorised UTF-8 check, far cheaper than per line
    except pa.ArrowInvalid:
        return False
    return True


def batch_from_bytes(chunk: bytes, first_line_no: int = 1, end: int | None = None) -> Batch:
    """Splits the whole, newline-terminated lines of `chunk[:end]` into a Batch (lines keep
    their CR/LF here).

    The lines are built on `chunk` itself: the bytes past `end` (the start of a line that the
    next block ends) are left in it rather than copied out.
    """
    arr = np.frombuffer(chunk, dtype=np.uint8, count=len(chunk) if end is None else end)
    newlines = np.flatnonzero(arr == 10)
    offsets = np.empty(len(newlines) + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:] = newlines + 1
    n = len(offsets) - 1
    lines = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chunk))
    bad_idx: list[int] = []
    if arr.size and int(arr.max()) >= 0x80 and not _valid_utf8(lines):
        chunk, offsets, bad_idx = _decode_lossy(chunk, arr, offsets)
        lines = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chunk))
    bad = dict.fromkeys(bad_idx, "invalid_utf8")
    lengths = np.diff(offsets)
    for i in np.flatnonzero(lengths > MAX_LINE_BYTES + 2).tolist():
        bad[int(i)] = "line_too_long"
    return Batch(first_line_no=first_line_no, lines=lines, bad=bad)


def _overlong_batch(head: bytes, line_no: int) -> Batch:
    text = head[:MAX_RAW_CHARS].decode("utf-8", errors="replace")
    return Batch(line_no, pa.array([text], type=pa.large_string()), {0: "line_too_long"})


def iter_batches(path: Path, state: ReadState, block_bytes: int = BLOCK_BYTES) -> Iterator[Batch]:
    """Yields the file's lines in batches; memory stays within a few blocks whatever the file."""
    line_no = 1
    pending = b""
    skipping: bytes | None = None  # head of an over-long line being skipped
    for block in prefetched(decompressed_blocks(path, state, block_bytes)):
        if skipping is not None:
            nl = block.find(b"\n")
            if nl == -1:
                continue
            yield _overlong_batch(skipping, line_no)
            line_no += 1
            skipping = None
            block = block[nl + 1 :]
        buf = pending + block if pending else block
        last_nl = buf.rfind(b"\n")
        if last_nl == -1:
            if len(buf) > MAX_LINE_BYTES:
                skipping, pending = buf[:MAX_RAW_CHARS], b""
            else:
                pending = buf
            continue
        pending = buf[last_nl + 1 :]
        if len(pending) > MAX_LINE_BYTES:
            skipping, pending = pending[:MAX_RAW_CHARS], b""
        batch = batch_from_bytes(buf, line_no, end=last_nl + 1)
        line_no += len(batch.lines)
        yield batch
    if skipping is not None:
        state.unterminated_line = line_no
        yield _overlong_batch(skipping, line_no)
    elif pending:
        # The last line has no newline: a file still being written, or cut short.
        state.unterminated_line = line_no
        yield batch_from_bytes(pending + b"\n", line_no)


def sample_lines(path: Path, max_lines: int = 200, max_bytes: int = 1 << 20) -> list[str]:
    """The first non-blank lines of a file, decoded lossily, for format detection."""
    head = b""
    try:
        for block in decompressed_blocks(path, ReadState(), block_bytes=max_bytes):
            head = block
            break
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from e
    out: list[str] = []
    for raw in head.split(b"\n")[:-1] or [head]:
        text = raw.decode("utf-8", errors="replace").strip()
        if text:
            out.append(text)
        if len(out) >= max_lines:
            break
    return out
