"""Real public logs: every line accounted for, and the figures agree with GoAccess on the same bytes.

The corpora live in `../shared/corpora` (read-only, with their sources and licences); GoAccess
(Debian's package, installed by `make test`) is the independent analyzer, see tests/independent.py.
Where the two decide differently on a kind of line, the test names the kind and checks it.
"""

from __future__ import annotations

import gzip
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
import zstandard
from independent import FASTLY_JSON, GOACCESS_MAX_LINE, goaccess_summary
from shared_corpora import CORPORA, needs_corpora

from pipeline.ingest.run import ingest_file
from pipeline.settings import Settings
from pipeline.warehouse.store import Warehouse

pytestmark = needs_corpora
KEY = b"corpus-test-key-0123456789abcdef"

COMBINED_FILES = [
    "elastic_apache_logs/apache_logs",
    "logparser_hackers_access/hackers-access.log",
    "lnav_test_logs/logfile_shop_access_log.0",
]
FASTLY_FILES = [
    "cratesio_cdn_logs/fastly/basic.log",
    "cratesio_cdn_logs/fastly/basic.log.zst",
    "cratesio_cdn_logs/fastly/full-info.log",
    "cratesio_cdn_logs/fastly/percent-encoding.log",
    "cratesio_cdn_logs/fastly/recoverable-errors.log",
    "cratesio_cdn_logs/fastly/unrelated-traffic.log",
]
HONEYNET = sorted((CORPORA / "honeynet_chuvakin_httpd").glob("access_log*"))


def ours(paths: list[Path], wh_root: Path) -> dict:
    """Ingest into a fresh warehouse; totals from its SQL views, accounting from the reports."""
    wh = Warehouse(wh_root)
    reports = [ingest_file(p, wh, Settings(), ip_key=KEY, force=True) for p in paths]
    for r in reports:
        assert r.balanced, r
    con = wh.connect(read_only=True)
    try:
        n, nbytes = con.sql("SELECT count(*), coalesce(sum(bytes), 0) FROM requests").fetchall()[0]
        status = dict(con.sql("SELECT status, count(*) FROM requests GROUP BY ALL").fetchall())
        rejected = con.sql("SELECT count(*) FROM rejects").fetchall()[0][0]
    finally:
        con.close()
    return {
        "parsed": n,
        "bytes": int(nbytes),
        "status": status,
        "rejected": rejected,
        "lines": sum(r.lines_total for r in reports),
        "blank": sum(r.lines_blank for r in reports),
        "reasons": sum((Counter(r.reject_reasons) for r in reports), Counter()),
    }


def test_corpora_are_present() -> None:
    # in a clone that has the corpora, a missing file is a failure, not a skip
    for rel in COMBINED_FILES + FASTLY_FILES:
        assert (CORPORA / rel).is_file(), rel
    assert len(HONEYNET) == 26


@pytest.mark.parametrize("rel", COMBINED_FILES)
def test_combined_logs_agree_with_goaccess(rel: str, tmp_path: Path) -> None:
    path = CORPORA / rel
    mine = ours([path], tmp_path / "wh")
    theirs = goaccess_summary([path], "COMBINED")
    assert mine["lines"] == sum(1 for _ in path.open("rb"))
    assert (mine["parsed"], mine["rejected"]) == (theirs.total_requests, theirs.failed_requests)
    assert mine["bytes"] == theirs.bytes
    assert mine["status"] == theirs.status_counts


@pytest.mark.parametrize("rel", FASTLY_FILES)
def test_fastly_logs_agree_with_goaccess(rel: str, tmp_path: Path) -> None:
    path = CORPORA / rel
    mine = ours([path], tmp_path / "wh")
    theirs = goaccess_summary([path], FASTLY_JSON)
    assert (mine["parsed"], mine["rejected"]) == (theirs.total_requests, theirs.failed_requests)
    assert mine["bytes"] == theirs.bytes
    assert mine["status"] == theirs.status_counts


def test_compressed_twins_give_identical_figures(tmp_path: Path) -> None:
    plain = CORPORA / "elastic_apache_logs/apache_logs"
    gz = tmp_path / "apache_logs.gz"
    with open(plain, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    zst = tmp_path / "apache_logs.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
    base = ours([plain], tmp_path / "a")
    assert ours([gz], tmp_path / "b") == base
    assert ours([zst], tmp_path / "c") == base
    assert ours([CORPORA / "cratesio_cdn_logs/fastly/basic.log.zst"], tmp_path / "d") == ours(
        [CORPORA / "cratesio_cdn_logs/fastly/basic.log"], tmp_path / "e"
    )


def test_honeynet_every_line_accounted_and_agrees(tmp_path: Path) -> None:
    """The 2004 honeypot log: worms, binary requests, unescaped quotes, hostname clients.

    Both tools read the same bytes: lines of at most 4095 bytes (Debian's GoAccess splits longer
    ones) that are valid UTF-8 (dlcdn rejects the others as `invalid_utf8`, GoAccess counts some
    of them). On those lines dlcdn parses everything; GoAccess fails exactly the lines whose
    request holds an unescaped quote (Apache 1.3 did not escape), which dlcdn reads anyway.
    """
    all_lines = [line + b"\n" for p in HONEYNET for line in p.read_bytes().split(b"\n")[:-1]]
    mine_all = ours(HONEYNET, tmp_path / "all")
    assert mine_all["lines"] == len(all_lines) == 38490
    assert mine_all["blank"] == 3  # the three one-newline files, .6 .7 .8 (one ingest: same bytes)
    not_utf8 = sum(1 for line in all_lines if not _is_utf8(line))
    assert mine_all["reasons"] == Counter({"invalid_utf8": not_utf8})

    def both_read(line: bytes) -> bool:
        return (
            len(line.rstrip(b"\r\n")) <= GOACCESS_MAX_LINE
            and _is_utf8(line)
            and line.strip() != b""
        )

    common = tmp_path / "honeynet-common.log"
    common.write_bytes(b"".join(line for line in all_lines if both_read(line)))
    mine = ours([common], tmp_path / "common")
    theirs = goaccess_summary([common], "COMBINED", validate_ip=False)
    unescaped = [line for line in all_lines if both_read(line) and _request_has_bare_quote(line)]
    assert mine["rejected"] == 0
    assert theirs.failed_requests == len(unescaped) > 0
    assert mine["parsed"] == theirs.total_requests + theirs.failed_requests
    extra = Counter(int(_REQUEST.search(line).group(2)) for line in unescaped)
    assert Counter(mine["status"]) == Counter(theirs.status_counts) + extra


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_REQUEST = re.compile(rb'\] "(.*?)" (\d{3}) ')


def _request_has_bare_quote(line: bytes) -> bool:
    """The request field holds a `"` that no backslash escapes (Nikto probes in the corpus)."""
    m = _REQUEST.search(line)
    return m is not None and b'"' in m.group(1).replace(b'\\"', b"")
