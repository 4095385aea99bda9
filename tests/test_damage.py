"""Damaged input is always reported: a cut gzip, zstd or plain file says so in `dlcdn ingest`'s
output and in the manifest's `note`, and keeps every line before the cut."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

from pipeline.warehouse.store import Warehouse

DLCDN = str(Path(sys.executable).parent / "dlcdn")
LINES = 4000


def _log() -> bytes:
    return b"".join(
        f"198.51.100.{i % 250} - - [20/Nov/2026:10:{i // 60 % 60:02d}:{i % 60:02d} +0000] "
        f'"GET /alpine/v3.22/main/x86_64/pkg{i}-1.0-r0.apk HTTP/1.1" 200 {i} "-" "libfetch/2.0"\n'.encode()
        for i in range(LINES)
    )


def _zstd_streamed(data: bytes) -> bytes:
    """zstd as a streaming writer makes it (Fastly's codec, `zstd` reading a pipe): no content
    size in the frame header, so a cut cannot be told from the header alone."""
    out = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(out, closefd=False) as w:
        w.write(data)
    frame = out.getvalue()
    assert zstandard.get_frame_parameters(frame).content_size == zstandard.CONTENTSIZE_UNKNOWN
    return frame


# Each case: the whole file, and the same file cut. For plain text "cut" means the last line has
# no newline (every log writer ends each record with one).
CASES = {
    "gzip": (lambda d: gzip.compress(d), "gzip stream ends early"),
    "zstd": (_zstd_streamed, "zstd stream ends early"),
    "plain": (lambda d: d, f"line {LINES:,}, the last, has no newline"),
}


@pytest.mark.parametrize("compression", sorted(CASES))
def test_a_cut_file_is_reported_in_the_output_and_the_manifest(
    compression: str, tmp_path: Path
) -> None:
    encode, expected = CASES[compression]
    data = _log()
    whole = encode(data)
    cut = whole[: len(whole) * 2 // 3] if compression != "plain" else data[:-40]
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "whole.log").write_bytes(whole)
    (folder / "cut.log").write_bytes(cut)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLCDN_")}
    env |= {"DLCDN_WAREHOUSE": str(tmp_path / "wh"), "DLCDN_IP_KEY": "damage-test-key-0123456789"}

    out = subprocess.run(
        [DLCDN, "ingest", str(folder)], capture_output=True, text=True, env=env, timeout=120
    )

    assert out.returncode == 0, out.stderr
    report = out.stdout.split(str(folder / "whole.log"))
    cut_part, whole_part = report[0], report[1]
    assert f"note: {expected}" in cut_part
    assert "note:" not in whole_part
    manifest = {r["name"]: r for r in Warehouse(tmp_path / "wh").manifest().iter_rows(named=True)}
    assert manifest["whole.log"]["note"] is None
    assert manifest["whole.log"]["rows_parsed"] == LINES
    note = manifest["cut.log"]["note"]
    assert note is not None and expected in note
    # every whole line before the cut is kept; the cut line itself is a reject or a parsed line
    row = manifest["cut.log"]
    assert row["lines_total"] == row["lines_blank"] + row["rows_parsed"] + row["rows_rejected"]
    assert row["rows_parsed"] + row["rows_rejected"] == row["lines_total"] > LINES // 3
