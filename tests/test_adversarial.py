"""Adversarial input (tests/data/adversarial, made by make_corpus.py): no crash, every line
accounted for, a clear message for whole-file problems, memory bounded."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

import pytest

from pipeline.ingest.reader import InputError
from pipeline.ingest.run import ingest_file
from pipeline.schema import REJECT_REASONS
from pipeline.settings import Settings
from pipeline.warehouse.store import Warehouse

DATA = Path(__file__).parent / "data" / "adversarial"
KEY = b"adversarial-key-0123456789abcdef"
DLCDN = str(Path(sys.executable).parent / "dlcdn")


def ingest(path: Path, tmp: Path):  # type: ignore[no-untyped-def]
    return ingest_file(path, Warehouse(tmp / "wh"), Settings(), ip_key=KEY)


def newline_count(path: Path) -> int:
    data = path.read_bytes()
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


# (file, lines it holds, reject count by reason, lines parsed, blank lines), each counted from
# make_corpus.py by hand: lines = blank + parsed + rejected, exactly
CASES = [
    # raw TLS and random binary: the 10 lines that are not UTF-8 are rejects, the 20 others parse
    ("tls_binary.log", 30, {"invalid_utf8": 10}, 20, 0),
    # NUL bytes: only the line of 64 NULs fails to match; 'G\0T' as the method and a NUL after the
    # last quote still parse (the odd field becomes null), so 12 of 13 lines are rows
    ("nul_bytes.log", 13, {"no_match": 1}, 12, 0),
    # invalid UTF-8: a latin-1 user agent, an overlong encoding, lone continuation bytes
    ("invalid_utf8.log", 13, {"invalid_utf8": 3}, 10, 0),
    # CRLF: stripped; a bare CR inside the user agent is part of it
    ("crlf.log", 11, {}, 11, 0),
    # 10,000 quotes: rejected quickly (linear-time regex), not fatal; the line whose request is
    # all quotes still has a client, time, status and size, so it is a row with a null request
    ("many_quotes.log", 4, {"no_match": 1}, 3, 0),
    # mixed formats: the file's majority format (combined) parses; the 5 others are rejects
    ("mixed_formats.log", 17, {"no_match": 5}, 12, 0),
    # offsets and disorder: every line parses into the right UTC instant
    ("out_of_order_offsets.log", 21, {}, 21, 0),
    ("blank_lines.log", 4, {}, 0, 4),
]


@pytest.mark.parametrize(("name", "lines", "reasons", "parsed", "blank"), CASES)
def test_bad_lines_are_accounted(
    name: str, lines: int, reasons: dict[str, int], parsed: int, blank: int, tmp_path: Path
) -> None:
    path = DATA / name
    r = ingest(path, tmp_path)
    assert r.lines_total == newline_count(path) == lines
    assert (r.lines_blank, r.rows_parsed, r.rows_rejected) == (blank, parsed, sum(reasons.values()))
    assert r.reject_reasons == reasons
    assert set(r.reject_reasons) <= set(REJECT_REASONS)
    # the warehouse holds what the accounting says, line by line
    con = Warehouse(tmp_path / "wh").connect(read_only=True)
    try:
        ((rows,),) = con.sql("SELECT count(*) FROM requests").fetchall()
        stored = dict(con.sql("SELECT reason, count(*) FROM rejects GROUP BY ALL").fetchall())
    finally:
        con.close()
    assert (rows, stored) == (parsed, reasons)


def test_offsets_give_utc_instants(tmp_path: Path) -> None:
    ingest(DATA / "out_of_order_offsets.log", tmp_path)
    con = Warehouse(tmp_path / "wh").connect(read_only=True)
    rows = con.sql("SELECT line_no, ts, date FROM requests ORDER BY line_no").fetchall()
    con.close()
    # line 2 is 21/Nov 10:13:31 -0800 = 18:13:31 UTC; line 3 is 22/Nov 10:26:02 +1400 = 21/Nov 20:26 UTC
    assert rows[1][1] == dt.datetime(2026, 11, 21, 18, 13, 31, tzinfo=dt.UTC)
    assert rows[2][1] == dt.datetime(2026, 11, 21, 20, 26, 2, tzinfo=dt.UTC) and rows[2][
        2
    ] == dt.date(2026, 11, 21)


@pytest.mark.parametrize("name", ["truncated.log.gz", "truncated.log.zst"])
def test_truncated_streams_keep_the_lines_before_the_break(name: str, tmp_path: Path) -> None:
    r = ingest(DATA / name, tmp_path)
    assert r.note is not None and "ends early" in r.note
    assert r.balanced and r.rows_parsed > 1000
    assert set(r.reject_reasons) <= {"no_match"}  # at most the cut last line


def test_whole_file_problems_are_clear(tmp_path: Path) -> None:
    r = ingest(DATA / "empty.log", tmp_path)
    assert (r.lines_total, r.rows_parsed, r.rows_rejected) == (0, 0, 0)
    with pytest.raises(InputError, match=r"not_a_log\.png: unknown log format"):
        ingest(DATA / "not_a_log.png", tmp_path)
    with pytest.raises(InputError, match="missing.log: not a regular file"):
        ingest(tmp_path / "missing.log", tmp_path)


def _rss_of_ingest(path: Path, wh: Path) -> tuple[dict, int]:
    """Runs an ingest in its own process; returns its report and peak RSS in bytes."""
    code = (
        "import json, resource, sys\n"
        "from pathlib import Path\n"
        "from pipeline.ingest.run import ingest_file\n"
        "from pipeline.settings import Settings\n"
        "from pipeline.warehouse.store import Warehouse\n"
        "r = ingest_file(Path(sys.argv[1]), Warehouse(Path(sys.argv[2])), Settings(), ip_key=b'k' * 32)\n"
        "print(json.dumps({'lines': r.lines_total, 'reasons': r.reject_reasons, 'parsed': r.rows_parsed,\n"
        "                  'rss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))\n"
    )
    import json

    out = subprocess.run(
        [sys.executable, "-c", code, str(path), str(wh)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    return report, report.pop("rss")


@pytest.mark.slow
def test_zstd_bomb_is_one_rejected_line_in_bounded_memory(tmp_path: Path) -> None:
    # log lines around 4 GiB of zeros in 128 KiB: the endless line is skipped in blocks
    report, rss = _rss_of_ingest(DATA / "bomb.zst", tmp_path / "wh")
    assert report == {"lines": 7, "reasons": {"line_too_long": 1}, "parsed": 6}
    assert rss < 1 << 30


@pytest.mark.slow
def test_gzip_bomb_and_a_ten_megabyte_line_in_bounded_memory(tmp_path: Path) -> None:
    # gzip's ratio is at most ~1000:1: log lines, 2 GiB of newline-free text in ~2 MiB, a 10 MB
    # line, log lines
    bomb = tmp_path / "bomb.log.gz"
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(bomb, "wb") as f:
        f.write(comp.compress((DATA / "crlf.log").read_bytes()))
        block = b"A" * (1 << 20)
        for _ in range(2048):
            f.write(comp.compress(block))
        f.write(comp.compress(b"\n" + b"x" * (10 << 20) + b"\n" + (DATA / "crlf.log").read_bytes()))
        f.write(comp.flush())
    assert os.path.getsize(bomb) < 8 << 20
    report, rss = _rss_of_ingest(bomb, tmp_path / "wh")
    assert report == {"lines": 24, "reasons": {"line_too_long": 2}, "parsed": 22}
    assert rss < 1 << 30


def test_raw_text_of_rejects_is_kept_readable(tmp_path: Path) -> None:
    ingest(DATA / "invalid_utf8.log", tmp_path)
    con = Warehouse(tmp_path / "wh").connect(read_only=True)
    rows = con.sql("SELECT line_no, reason, raw FROM rejects ORDER BY line_no").fetchall()
    con.close()
    assert Counter(reason for _, reason, _ in rows) == Counter({"invalid_utf8": 3})
    assert "Mozilla/5.0 (Mac\ufffd)" in rows[0][2]
    assert rows[0][2].startswith("198.51.100.0 ")  # the client address is masked to its /24
