"""The content fingerprint that names a file in the warehouse (its `file_id`).

A keyless BLAKE2b of the file's bytes as they arrive (compressed or not): the same content under
another name is recognised as already ingested, and the fingerprints of a file's prefixes tell a
log that grew since it was ingested.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

from pipeline.ingest.reader import BLOCK_BYTES


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


def fingerprint(stream: Readable, prefix_sizes: tuple[int, ...] = ()) -> tuple[str, dict[int, str]]:
    """Fingerprint of everything `stream` yields, and of the given prefix sizes along the way."""
    h = hashlib.blake2b(digest_size=12)
    prefixes: dict[int, str] = {}
    wanted = sorted(s for s in set(prefix_sizes) if s > 0)
    done = 0
    while True:
        limit = BLOCK_BYTES
        if wanted and wanted[0] - done < limit:
            limit = wanted[0] - done
        block = stream.read(limit)
        if not block:
            break
        h.update(block)
        done += len(block)
        if wanted and done == wanted[0]:
            prefixes[wanted.pop(0)] = h.copy().hexdigest()
    return h.hexdigest(), prefixes


def file_fingerprint(path: Path, prefix_sizes: tuple[int, ...] = ()) -> tuple[str, dict[int, str]]:
    """`fingerprint` of a local file's bytes."""
    with open(path, "rb") as f:
        return fingerprint(f, prefix_sizes)
