"""Golden cases for the parser: one line in, the exact row (or reject reason) out.

Each case starts with a comment naming the rule it pins.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.geo import addresses
from pipeline.ingest import enrich
from pipeline.ingest.formats import COMBINED, FASTLY, FastlyFormat, nginx_format, resolve_format
from pipeline.ingest.reader import batch_from_bytes
from pipeline.ingest.run import batch_rows

KEY = b"k" * 32
UTC = dt.UTC


def run(lines: list[bytes] | bytes, fmt=COMBINED, keep_raw_ip: bool = False) -> enrich.Rows:
    data = lines if isinstance(lines, bytes) else b"\n".join(lines) + b"\n"
    ctx = enrich.Context("f1", "test", fmt, KEY, keep_raw_ip=keep_raw_ip)
    return batch_rows(batch_from_bytes(data), ctx)


def one(line: bytes, fmt=COMBINED) -> dict:
    out = run([line], fmt)
    assert out.rejects.is_empty(), out.rejects.to_dicts()
    assert out.requests.height == 1
    return out.requests.row(0, named=True)


CASES = [
    # nginx combined, the T1 mirror format: every field, time converted to UTC
    (
        b'203.0.113.7 - - [20/Nov/2026:10:00:00 +0100] "GET /alpine/v3.22/main/x86_64/APKINDEX.tar.gz HTTP/1.1" 304 0 "-" "libfetch/2.0"',
        COMBINED,
        dict(
            ts=dt.datetime(2026, 11, 20, 9, tzinfo=UTC),
            date=dt.date(2026, 11, 20),
            method="GET",
            path="/alpine/v3.22/main/x86_64/APKINDEX.tar.gz",
            query=None,
            protocol="HTTP/1.1",
            status=304,
            bytes=0,
            referer=None,
            user_agent="libfetch/2.0",
            client_kind="apk",
            branch="v3.22",
            branch_resolved="v3.22",
            repo="main",
            arch="x86_64",
            file_kind="apkindex",
            client_net="203.0.113.0/24",
        ),
    ),
    # common log format (no referer/UA): referer and user agent are null, not empty
    (
        b'::1 - - [26/Dec/2016:16:16:29 +0200] "GET /favicon.ico HTTP/1.1" 404 209',
        COMBINED,
        dict(
            status=404,
            bytes=209,
            referer=None,
            user_agent=None,
            client_kind=None,
            file_kind="other",
            client_net="::/48",
            ts=dt.datetime(2016, 12, 26, 14, 16, 29, tzinfo=UTC),
        ),
    ),
    # bytes '-' means 0; the `"-"` request of a 408 leaves method/path null but the row counts
    (
        b'::1 - - [26/Dec/2016:16:16:48 +0200] "-" 408 -',
        COMBINED,
        dict(status=408, bytes=0, method=None, path=None, protocol=None, file_kind=None),
    ),
    # a vhost in front, and a forwarded chain as client: the first address is the client
    (
        b'example.com 10.0.0.2, 10.0.0.1, 127.0.0.1 - - [07/Dec/2016:11:05:07 +0100] "GET /ocelot HTTP/1.1" 200 571 "-" "Mozilla/5.0 (X11)"',
        COMBINED,
        dict(client_net="10.0.0.0/24", path="/ocelot", status=200, client_kind="browser"),
    ),
    # extra trailing fields after the user agent are ignored
    (
        b'172.17.0.1 - - [29/May/2017:19:02:48 +0000] "GET /stringpatch HTTP/1.1" 404 612 "-" "Mozilla/5.0 (Windows NT 6.1; rv:15.0)" "-" 0.012',
        COMBINED,
        dict(status=404, bytes=612, user_agent="Mozilla/5.0 (Windows NT 6.1; rv:15.0)"),
    ),
    # Apache 1.3 did not escape quotes in the request: read up to `" <status> <bytes>`
    (
        b'68.49.152.86 - - [22/Apr/2004:11:55:13 -0400] "GET" /hostadmin/?page=\' HTTP/1.0" 501 345 "-" "Mozilla/4.75 (Nikto/1.32 )"',
        COMBINED,
        dict(status=501, bytes=345, method=None, client_kind="crawler"),
    ),
    # a hostname as client is still one client (hashed), with no network
    (
        b'monitoring-server - - [29/May/2017:19:02:48 +0000] "GET /status HTTP/1.1" 200 612 "-" "curl/8.5.0"',
        COMBINED,
        dict(client_net=None, client_kind="curl"),
    ),
    # query strings split off the path; package name and version split at the last -<digit>..-r<N>
    (
        b'198.51.100.1 - - [20/Nov/2026:10:00:00 +0000] "GET /alpine/edge/testing/aarch64/py3-foo-bar-2.0.1_git2024-r10.apk?x=1 HTTP/2.0" 200 123456 "-" "libfetch/2.0"',
        COMBINED,
        dict(
            path="/alpine/edge/testing/aarch64/py3-foo-bar-2.0.1_git2024-r10.apk",
            query="x=1",
            file_kind="package",
            package="py3-foo-bar",
            package_version="2.0.1_git2024-r10",
            repo="testing",
            arch="aarch64",
            branch="edge",
        ),
    ),
    # `+` in package names arrives percent-encoded
    (
        b'198.51.100.1 - - [20/Nov/2026:10:00:00 +0000] "GET /alpine/v3.20/main/x86/libstdc%2B%2B-13.2.1_git20240309-r0.apk HTTP/1.1" 200 1 "-" "libfetch/2.0"',
        COMBINED,
        dict(package="libstdc++", package_version="13.2.1_git20240309-r0", arch="x86"),
    ),
    # latest-stable resolves to the branch that was newest on the request date
    (
        b'198.51.100.1 - - [01/Jan/2025:00:00:00 +0000] "GET /alpine/latest-stable/main/x86_64/APKINDEX.tar.gz HTTP/1.1" 200 1 "-" "libfetch/2.0"',
        COMBINED,
        dict(branch="latest-stable", branch_resolved="v3.21"),
    ),
    # release artefacts: flavor, version, arch from the file name; checksums keep them too
    (
        b'198.51.100.1 - - [20/Nov/2026:10:00:00 +0000] "GET /alpine/v3.20/releases/x86_64/alpine-minirootfs-3.20.3-x86_64.tar.gz HTTP/1.1" 206 1048576 "-" "curl/8.5.0"',
        COMBINED,
        dict(
            file_kind="release",
            release_flavor="minirootfs",
            release_version="3.20.3",
            arch="x86_64",
            repo="releases",
        ),
    ),
    (
        b'198.51.100.1 - - [20/Nov/2026:10:00:00 +0000] "GET /alpine/v3.21/releases/aarch64/alpine-standard-3.21.0-aarch64.iso.sha256 HTTP/1.1" 200 97 "-" "Wget"',
        COMBINED,
        dict(
            file_kind="checksum",
            release_flavor="standard",
            release_version="3.21.0",
            client_kind="busybox-wget",
        ),
    ),
    (
        b'198.51.100.1 - - [20/Nov/2026:10:00:00 +0000] "GET /alpine/v3.21/releases/x86_64/netboot-3.21.0/vmlinuz-lts HTTP/1.1" 200 97 "-" "Wget/1.21.4"',
        COMBINED,
        dict(file_kind="netboot", release_version="3.21.0", client_kind="wget"),
    ),
    (
        b'198.51.100.1 - - [20/Nov/2026:10:00:00 +0000] "GET /alpine/v3.20/releases/cloud/nocloud_alpine-3.20.3-x86_64-bios-cloudinit-r0.qcow2 HTTP/1.1" 200 9 "-" "Go-http-client/1.1"',
        COMBINED,
        dict(
            file_kind="cloud_image",
            release_version="3.20.3",
            release_flavor="nocloud",
            arch="x86_64",
            client_kind="go-http",
        ),
    ),
    # edge releases are snapshots named by date
    (
        b'198.51.100.1 - - [20/Nov/2026:10:00:00 +0000] "GET /alpine/edge/releases/x86_64/alpine-minirootfs-20261101-x86_64.tar.gz HTTP/1.1" 200 9 "-" "curl/8.5.0"',
        COMBINED,
        dict(
            file_kind="release",
            release_version="20261101",
            release_flavor="minirootfs",
            branch="edge",
        ),
    ),
    # top-level files
    (
        b'198.51.100.1 - - [20/Nov/2026:10:00:00 +0000] "GET /alpine/MIRRORS.txt HTTP/1.1" 200 9 "-" "buildkit/v0.12"',
        COMBINED,
        dict(file_kind="mirrors_list", branch=None, client_kind="buildkit"),
    ),
    (
        b'198.51.100.1 - - [20/Nov/2026:10:00:00 +0000] "GET /alpine/v3.22/releases/x86_64/latest-releases.yaml HTTP/1.1" 200 9 "-" "Mozilla/5.0 (compatible; Googlebot/2.1)"',
        COMBINED,
        dict(file_kind="release_index", client_kind="crawler"),
    ),
    # Fastly JSON with Fastly's recommended key names behind a syslog prefix
    (
        b'<134>2026-11-20T10:00:00Z cache-fra-eddf8230041 dlcdn[1]: {"timestamp":"2026-11-20T10:00:00.123Z","client_ip":"2001:db8:1234:5678::9","request_method":"GET","url":"/alpine/v3.22/community/riscv64/APKINDEX.tar.gz","request_protocol":"HTTP/2","response_status":200,"response_body_size":123,"request_user_agent":"libfetch/2.0","request_referer":null,"server_datacenter":"FRA","response_state":"HIT-CLUSTER","time_elapsed":1500,"host":"dl-cdn.alpinelinux.org"}',
        FASTLY,
        dict(
            ts=dt.datetime(2026, 11, 20, 10, 0, 0, 123000, tzinfo=UTC),
            client_net="2001:db8:1234::/48",
            method="GET",
            protocol="HTTP/2",
            status=200,
            bytes=123,
            pop="FRA",
            cache_state="HIT-CLUSTER",
            elapsed_ms=1.5,
            repo="community",
            arch="riscv64",
            referer=None,
        ),
    ),
    # crates.io's Fastly keys; full URL -> path; POP from the syslog host when the JSON has none
    (
        b'<134>2024-01-16T23:53:20Z cache-iad-kiad7000128 s3-request-logs[322614]: {"bytes":11355,"date_time":"2024-01-16T23:53:20.460557177Z","ip":"1.2.3.4","method":"GET","status":200,"url":"https://static.crates.io/crates/strsim/strsim-0.10.0.crate","version":"1","http":{"useragent":"cargo/1.92.0"}}',
        FASTLY,
        dict(
            path="/crates/strsim/strsim-0.10.0.crate",
            pop="IAD",
            bytes=11355,
            user_agent="cargo/1.92.0",
            client_kind="other",
        ),
    ),
    # no syslog prefix at all
    (
        b'{"timestamp":"2026-11-20T10:00:00Z","client_ip":"::ffff:192.0.2.9","url":"/alpine/last-updated","response_status":"200","response_body_size":"11"}',
        FASTLY,
        dict(
            client_net="192.0.2.0/24", file_kind="last_updated", status=200, bytes=11, method=None
        ),
    ),
]


@pytest.mark.parametrize(("line", "fmt", "expected"), CASES)
def test_golden_rows(line: bytes, fmt, expected: dict) -> None:
    row = one(line, fmt)
    assert {k: row[k] for k in expected} == expected


REJECTS = [
    # a line that is not in the format
    (b"hello world", COMBINED, "no_match"),
    # TLS bytes sent raw (not escaped by the server) are not UTF-8
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage", COMBINED, "invalid_utf8"),
    # a truncated line
    (
        b'203.0.113.7 - - [20/Nov/2026:10:00:00 +0000] "GET /alpine/v3.22/main/x86_64/APKINDEX.tar',
        COMBINED,
        "no_match",
    ),
    # an impossible date
    (
        b'203.0.113.7 - - [31/Feb/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"',
        COMBINED,
        "bad_timestamp",
    ),
    # a status outside 100..599
    (
        b'203.0.113.7 - - [20/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 999 1 "-" "-"',
        COMBINED,
        "bad_value",
    ),
    # a status of "-" is a missing field
    (
        b'203.0.113.7 - - [20/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" - 1 "-" "-"',
        COMBINED,
        "missing_field",
    ),
    # truncated JSON
    (
        b'<134>2026-11-20T10:00:00Z cache-fra-1 dlcdn[1]: {"timestamp":"2026-11-20T10:00:00Z","client_ip":"1.2.3.4"',
        FASTLY,
        "no_match",
    ),
    # braces that are not JSON
    (b"<134>2026-11-20T10:00:00Z cache-fra-1 dlcdn[1]: {not json}", FASTLY, "bad_json"),
    # JSON without a time
    (b'{"client_ip":"1.2.3.4","response_status":200}', FASTLY, "missing_field"),
    # a prefix that is not syslog's
    (b'foo: {"timestamp":"2026-11-20T10:00:00Z","response_status":200}', FASTLY, "no_match"),
]


@pytest.mark.parametrize(("line", "fmt", "reason"), REJECTS)
def test_golden_rejects(line: bytes, fmt, reason: str) -> None:
    out = run([line], fmt)
    assert out.requests.is_empty()
    assert out.rejects["reason"].to_list() == [reason]
    assert out.rejects["line_no"].to_list() == [1]


def test_reject_raw_masks_addresses_and_keeps_text() -> None:
    # rejects never hold a raw IP: IPv4 to /24, IPv6 to /48
    out = run([b"1.2.3.4 and 2001:db8:aaaa:bbbb::1 broke it"])
    assert out.rejects["raw"].to_list() == ["1.2.3.0 and 2001:db8:aaaa:: broke it"]
    # ...unless raw IPs are opted in (abuse investigation)
    out = run([b"1.2.3.4 broke it"], keep_raw_ip=True)
    assert out.rejects["raw"].to_list() == ["1.2.3.4 broke it"]


def test_masking_mixed_ipv6_notation_is_stable() -> None:
    # found by hypothesis: '::ffff:0:0' masked to '::ffff:0.0.0.0', and a second pass broke it
    assert addresses.mask_ip_text("::ffff:0:0") == "::ffff:0.0.0.0"
    assert (
        addresses.mask_ip_text("::ffff:192.0.2.77 and 64:ff9b::203.0.113.9")
        == "::ffff:192.0.2.0 and 64:ff9b::"
    )


def test_masking_a_cut_ipv6_address_keeps_48_bits() -> None:
    # found in the make demo warehouse: a truncated line ended inside an IPv6 client address
    assert addresses.mask_ip_text("2403:edc0:3f17:1598") == "2403:edc0:3f17::"
    assert addresses.mask_ip_text("[20/Nov/2026:10:00:00 +0000]") == "[20/Nov/2026:10:00:00 +0000]"


def test_a_nul_inside_the_client_is_a_client_not_a_crash() -> None:
    # found by hypothesis: inet_pton raised ValueError on an embedded NUL
    out = run([b'::\x00 - - [20/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"'])
    # a row, not a reject: the client is kept as an opaque id, with no network and no place
    assert out.rejects.height == 0
    (row,) = out.requests.select(
        "line_no", "client_net", "country", "status", "bytes", "path"
    ).rows()
    assert row == (1, None, None, 200, 1, "/")
    assert out.requests["client_id"].null_count() == 0


def test_invalid_utf8_raw_is_replaced_text() -> None:
    out = run([b"abc\xff\xfedef"])
    assert out.rejects["raw"].to_list() == ["abc\ufffd\ufffddef"]


def test_blank_lines_and_crlf_are_accounted() -> None:
    data = (
        b'203.0.113.7 - - [20/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "curl/8.0"\r\n'
        b"\r\n   \n"
        b'203.0.113.8 - - [20/Nov/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 2 "-" "curl/8.0"\r\n'
    )
    out = run(data)
    assert out.blank == 2
    assert out.requests["line_no"].to_list() == [1, 4]
    assert out.requests["user_agent"].to_list() == ["curl/8.0", "curl/8.0"]


def test_client_id_is_keyed_and_stable() -> None:
    line = b'203.0.113.7 - - [20/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"'
    a = one(line)["client_id"]
    assert a == one(line)["client_id"]
    ctx = enrich.Context("f1", "test", COMBINED, b"other-key" * 4)
    b = batch_rows(batch_from_bytes(line + b"\n"), ctx).requests["client_id"][0]
    assert a != b
    # IPv4-mapped IPv6 is the same client as the IPv4 address
    mapped = one(line.replace(b"203.0.113.7", b"::ffff:203.0.113.7"))["client_id"]
    assert mapped == a


def test_no_raw_ip_column_by_default() -> None:
    out = run([b'203.0.113.7 - - [20/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"'])
    assert "client_ip" not in out.requests.columns
    opted = run(
        [b'203.0.113.7 - - [20/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"'],
        keep_raw_ip=True,
    )
    assert opted.requests["client_ip"].to_list() == ["203.0.113.7"]


def test_nginx_log_format_string() -> None:
    # a user's own log_format: fields follow the variables, request_time is seconds
    fmt = nginx_format(
        '$host $remote_addr [$time_local] "$request" $status $body_bytes_sent '
        '"$http_user_agent" $request_time $upstream_cache_status'
    )
    row = one(
        b'dl-cdn.alpinelinux.org 192.0.2.1 [20/Nov/2026:10:00:00 +0000] "GET /alpine/edge/main/s390x/APKINDEX.tar.gz HTTP/1.1" 200 77 "libfetch/2.0" 0.250 HIT',
        fmt,
    )
    assert (
        row["arch"],
        row["bytes"],
        row["user_agent"],
        row["elapsed_ms"],
        row["cache_state"],
    ) == (
        "s390x",
        77,
        "libfetch/2.0",
        250.0,
        "HIT",
    )
    assert resolve_format("nginx:'$remote_addr [$time_local] $status'").name.startswith("nginx:")
    with pytest.raises(ValueError, match="status"):
        nginx_format("$remote_addr [$time_local]")


def test_fastly_keys_are_configurable() -> None:
    fmt = FastlyFormat("fastly", keys={**FASTLY.keys, "client": ("who",), "pop": ("edge.pop",)})
    row = one(
        b'{"timestamp":"2026-11-20T10:00:00Z","who":"192.0.2.1","status":200,"edge":{"pop":"AMS"}}',
        fmt,
    )
    assert (row["client_net"], row["pop"]) == ("192.0.2.0/24", "AMS")


def test_json_values_of_the_wrong_shape_are_rejected_not_fatal() -> None:
    good = b'{"timestamp":"2026-11-20T10:00:00Z","client_ip":"192.0.2.1","status":200}'
    odd = b'{"timestamp":"2026-11-20T10:00:00Z","client_ip":{"v":1},"status":200}'
    out = run([good, odd, good], FASTLY)
    assert out.requests["line_no"].to_list() == [1, 3]
    assert out.rejects["reason"].to_list() == ["bad_json"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.binary(max_size=300), min_size=1, max_size=30), st.sampled_from([COMBINED, FASTLY])
)
def test_any_bytes_land_in_exactly_one_place(chunks: list[bytes], fmt) -> None:
    """Property: whatever the bytes, no crash, and every line is blank, parsed or rejected once."""
    data = b"\n".join(c.replace(b"\n", b" ") for c in chunks) + b"\n"
    out = run(data, fmt)
    n = data.count(b"\n")
    seen = out.requests["line_no"].to_list() + out.rejects["line_no"].to_list()
    assert len(seen) == len(set(seen))
    assert len(seen) + out.blank == n
    assert out.rejects["reason"].null_count() == 0


@settings(max_examples=100, deadline=None)
@given(
    ip=st.ip_addresses().map(str),
    status=st.integers(100, 599),
    nbytes=st.integers(0, 10**12),
    path=st.text(
        st.characters(min_codepoint=33, max_codepoint=126, exclude_characters='"\\'),
        min_size=1,
        max_size=60,
    ),
)
def test_well_formed_combined_lines_always_parse(
    ip: str, status: int, nbytes: int, path: str
) -> None:
    """Property: a line the nginx combined format writes always parses to its own values."""
    line = f'{ip} - - [20/Nov/2026:10:00:00 +0000] "GET /{path} HTTP/1.1" {status} {nbytes} "-" "curl/8.0"'
    row = one(line.encode())
    assert (row["status"], row["bytes"]) == (status, nbytes)
    assert row["path"] is not None and row["path"].startswith("/")


def test_frame_types_match_the_schema() -> None:
    from pipeline.schema import REQUESTS

    out = run([b'203.0.113.7 - - [20/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"'])
    assert out.requests.schema == REQUESTS
    assert isinstance(out.requests, pl.DataFrame)


def _facts(keys: pl.Series) -> pl.DataFrame:
    return keys.to_frame("k").with_columns(pl.col("k").str.len_chars().alias("n"))


def test_fact_cache_computes_each_key_once_and_answers_every_row() -> None:
    cache = enrich.FactCache("k", max_rows=1_000)
    seen: list[str] = []

    def compute(keys: pl.Series) -> pl.DataFrame:
        seen.extend(keys.to_list())
        return _facts(keys)

    batches = [["a", "bb", "a", None], ["bb", "ccc"], ["ccc", "a", "dddd"], ["bb"], [None, None]]
    for values in batches:
        got = cache.attach(pl.Series(values, dtype=pl.String), compute)
        assert got.to_dicts() == [
            {"k": v, "n": None if v is None else len(v)} for v in values
        ]  # one row per value, in order; all null for a null value
    assert sorted(seen) == ["a", "bb", "ccc", "dddd"]  # each key computed exactly once


def test_fact_cache_of_only_nulls_has_the_facts_columns() -> None:
    cache = enrich.FactCache("k")
    got = cache.attach(pl.Series([None, None], dtype=pl.String), _facts)
    assert got.schema == pl.Schema({"k": pl.String, "n": pl.UInt32})
    assert got.null_count().row(0) == (2, 2)


def test_fact_cache_starts_over_past_its_bound() -> None:
    cache = enrich.FactCache("k", max_rows=3)
    calls: list[list[str]] = []

    def compute(keys: pl.Series) -> pl.DataFrame:
        calls.append(sorted(keys.to_list()))
        return _facts(keys)

    cache.attach(pl.Series(["a", "b"]), compute)
    cache.attach(pl.Series(["c", "d"]), compute)  # 4 rows > 3: the next batch starts over
    assert cache.table is None
    got = cache.attach(pl.Series(["a", "c", "a"]), compute)
    assert got["n"].to_list() == [1, 1, 1]
    assert calls == [["a", "b"], ["c", "d"], ["a", "c"]]
    assert cache.table is not None and sorted(cache.table["k"]) == ["a", "c"]


def test_fact_cache_stays_in_few_chunks_over_many_batches() -> None:
    # Gathering from a frame of many chunks costs several times more; each batch adds rows.
    cache = enrich.FactCache("k")
    for b in range(200):
        keys = pl.Series([f"k{b}-{i}" for i in range(50)] + ["k0-0", f"k{b // 2}-7"])
        got = cache.attach(keys, _facts)
        assert got["k"].equals(keys.rename("k"))  # rows from both levels, in order
    levels = cache._gen.levels()
    assert levels is not None
    assert all(level is None or level.n_chunks() == 1 for level in levels)
    assert cache.table is not None and cache.table.height == 200 * 50
    assert cache.table["k"].n_unique() == 200 * 50


def test_fact_cache_keeps_one_row_per_key_under_concurrent_batches() -> None:
    import threading

    cache = enrich.FactCache("k")
    barrier = threading.Barrier(4)

    def compute(keys: pl.Series) -> pl.DataFrame:
        barrier.wait(timeout=5)  # every thread computes the same new keys at once
        return _facts(keys)

    values = pl.Series([f"key-{i}" for i in range(500)])
    got: list[pl.DataFrame] = []
    threads = [
        threading.Thread(target=lambda: got.append(cache.attach(values, compute))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.table is not None
    assert cache.table.height == 500
    assert cache.table["k"].n_unique() == 500
    assert len(got) == 4 and all(g["k"].equals(values.rename("k")) for g in got)
    assert cache.attach(values, compute).height == 500


_PREFIXES = st.sampled_from(
    [
        "",
        "<134>2024-01-16T23:53:20Z cache-iad-kiad7000128 s3-request-logs[322614]: ",
        "Jan 16 23:53:20 cache-ams21 fastly[1]: ",
        "<1>x h{ost tag: ",  # a `{` inside the prefix
        "<1>x host t{ag: ",
        "host: ",
        "garbage ",
    ]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    _PREFIXES,
    st.one_of(
        st.text(alphabet='{}":ab ,\\x', max_size=30),
        st.text(alphabet='{}":ab ,\\x', max_size=30).map(lambda s: "{" + s + "}"),
    ),
    st.sampled_from(["", " ", "  \t", "x"]),
)
def test_fastly_fast_split_reads_as_the_full_pattern(prefix: str, body: str, tail: str) -> None:
    from pipeline.ingest.formats import FASTLY_PREFIX_PATTERN, _split_fastly, syslog_host

    raw = prefix + body + tail
    frame = pl.DataFrame({"line_no": [1], "raw": [raw]})
    split = _split_fastly(frame)
    got = split.with_columns(syslog_host(pl.col("__head")).alias("__host")).row(0, named=True)
    want = frame.select(
        pl.col("raw").str.extract_groups(FASTLY_PREFIX_PATTERN).struct.unnest()
    ).row(0)
    assert (got["__json"], got["__host"] if got["__json"] is not None else None) == (
        want[1],
        want[0] if want[1] is not None else None,
    )


def test_fastly_pop_from_the_json_else_from_the_syslog_host_line_by_line() -> None:
    obj = '{"timestamp":"2026-11-20T10:00:00Z","client_ip":"203.0.113.7","url":"/","response_status":200%s}'
    out = run(
        [
            b"<134>2026-11-20T10:00:00Z cache-iad-kiad7000128 x[1]: "
            + (obj % ',"pop":"FRA"').encode(),
            b"<134>2026-11-20T10:00:00Z cache-ams21-x y[1]: " + (obj % "").encode(),
            b"<134>2026-11-20T10:00:00Z cache-sin-wsss1 z[1]: endpoint test message",
            (obj % ',"pop":"-"').encode(),  # "-" means unknown, not "read the host"
            (obj % "").encode(),  # no prefix, no POP
        ],
        FASTLY,
    )
    assert out.requests["pop"].to_list() == ["FRA", "AMS", None, None]
    assert out.rejects["line_no"].to_list() == [3]
