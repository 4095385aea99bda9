"""The Fastly side (deploy/fastly/): the shipped log format, rendered with sample values the way
Fastly renders it, lands in the warehouse with zero rejects and every field where it belongs; the
endpoint script sends Fastly's API exactly that format and the hourly gzip settings."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import subprocess
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest

from pipeline.ingest.formats import DEFAULT_FASTLY_KEYS
from pipeline.ingest.run import ingest_file
from pipeline.settings import Settings
from pipeline.warehouse.store import Warehouse

FASTLY = Path(__file__).resolve().parents[1] / "deploy" / "fastly"
FORMAT = (FASTLY / "log-format.txt").read_text().strip()
DIRECTIVE = re.compile(r"%\{(.*?)\}([Vt])")
HOST_EXPR = "if(req.http.Fastly-Orig-Host, req.http.Fastly-Orig-Host, req.http.Host)"


def _json_escape(text: str) -> str:
    """Fastly's json.escape: JSON string escapes, UTF-8 passed through as is."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def render(fmt: str, start: dt.datetime, values: dict[str, str]) -> str:
    """One log line as Fastly writes it: each `%{VCL}V` replaced by the variable's value (through
    json.escape where the format says so), `%{begin:STRFTIME}t` by the request's start time."""

    def one(m: re.Match[str]) -> str:
        expr, kind = m.group(1), m.group(2)
        if kind == "t":
            when, _, pattern = expr.partition(":")
            assert when == "begin", expr
            return start.strftime(pattern)
        inner = re.fullmatch(r"json\.escape\((.*)\)", expr)
        if inner:
            return _json_escape(values[inner.group(1)])
        return values[expr]  # a variable with no sample value fails here, by name

    return DIRECTIVE.sub(one, fmt)


# Sample requests: the VCL variables' values, and the row dlcdn must make of them.
SAMPLES = [
    (
        dt.datetime(2026, 11, 16, 23, 59, 58, tzinfo=dt.UTC),
        {
            "client.ip": "2001:db8:4006:812::200e",
            "req.method": "GET",
            "req.url": "/alpine/v3.22/main/x86_64/APKINDEX.tar.gz",
            "req.proto": "HTTP/1.1",
            "resp.status": "304",
            "resp.body_bytes_written": "0",
            "req.http.User-Agent": "libfetch/2.0",
            "req.http.Referer": "",  # an unset header: json.escape gives ""
            "server.datacenter": "AMS",
            "fastly_info.state": "HIT-CLUSTER",
            "time.elapsed.usec": "412",
            HOST_EXPR: "dl-cdn.alpinelinux.org",
        },
    ),
    (
        dt.datetime(2026, 11, 16, 8, 0, 1, tzinfo=dt.UTC),
        {
            "client.ip": "198.51.100.23",
            "req.method": "GET",
            "req.url": '/alpine/v3.21/releases/x86_64/alpine-standard-3.21.2-x86_64.iso?x=1&y="2"',
            "req.proto": "HTTP/2",
            "resp.status": "200",
            "resp.body_bytes_written": "229638144",
            "req.http.User-Agent": 'Mozilla/5.0 (X11; Linux) "quoted" \\ back\tslash é',
            "req.http.Referer": "https://alpinelinux.org/downloads/",
            "server.datacenter": "FRA",
            "fastly_info.state": "MISS",
            "time.elapsed.usec": "1834002",
            HOST_EXPR: "dl-cdn.alpinelinux.org",
        },
    ),
]


def test_the_format_names_exactly_the_keys_dlcdn_reads_by_default() -> None:
    line = render(FORMAT, *SAMPLES[0])
    keys = list(json.loads(line))
    # The first (Fastly-named) key of every field the parser reads, once each; `host` is logged
    # for people reading the raw files (one service, one host name: no column holds it).
    wanted = [names[0] for field, names in DEFAULT_FASTLY_KEYS.items() if field != "elapsed_ms"]
    assert sorted(keys) == sorted([*wanted, "host"])
    assert len(keys) == len(set(keys))
    assert "\n" not in FORMAT  # one log line per request


def test_rendered_lines_ingest_with_zero_rejects(tmp_path: Path) -> None:
    lines = [render(FORMAT, start, values) for start, values in SAMPLES]
    for line in lines:
        json.loads(line)  # valid JSON however the values are quoted
    # what the S3 endpoint writes: message type "blank" (no syslog prefix), gzip, one per hour
    f = tmp_path / "2026-11-16T23:00:00.000-0a1b2c3d4e5f.log.gz"
    f.write_bytes(gzip.compress("".join(f"{line}\n" for line in lines).encode()))
    wh = Warehouse(tmp_path / "wh")
    r = ingest_file(f, wh, Settings(), ip_key=b"fastly-deploy-test-key-0123456789")
    assert (r.format, r.lines_total, r.rows_parsed, r.rows_rejected) == ("fastly", 2, 2, 0)
    assert r.note is None
    rows = pl.concat(
        [
            pl.read_parquet(p, hive_partitioning=False)
            for p in (wh.root / "requests").rglob("*.parquet")
        ]
    ).sort("line_no")
    got = rows.select(
        "ts", "client_net", "method", "path", "query", "protocol", "status", "bytes",
        "user_agent", "referer", "pop", "cache_state", "elapsed_ms",
    ).rows()  # fmt: skip
    assert got == [
        (
            SAMPLES[0][0], "2001:db8:4006::/48", "GET", "/alpine/v3.22/main/x86_64/APKINDEX.tar.gz",
            None, "HTTP/1.1", 304, 0, "libfetch/2.0", None, "AMS", "HIT-CLUSTER", 0.412,
        ),
        (
            SAMPLES[1][0], "198.51.100.0/24", "GET",
            "/alpine/v3.21/releases/x86_64/alpine-standard-3.21.2-x86_64.iso", 'x=1&y="2"',
            "HTTP/2", 200, 229638144, 'Mozilla/5.0 (X11; Linux) "quoted" \\ back\tslash é',
            "https://alpinelinux.org/downloads/", "FRA", "MISS", 1834.002,
        ),
    ]  # fmt: skip
    assert rows["release_version"].to_list()[1] == "3.21.2"


class _FastlyAPI(BaseHTTPRequestHandler):
    """Records what the endpoint script posts, as Fastly's API would receive it."""

    received: list[tuple[str, dict[str, list[str]], str | None]] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.received.append(
            (self.path, urllib.parse.parse_qs(body), self.headers.get("Fastly-Key"))
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fastly_api():  # type: ignore[no-untyped-def]
    _FastlyAPI.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FastlyAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _FastlyAPI.received
    server.shutdown()
    thread.join(timeout=10)


def test_the_endpoint_script_sends_the_format_and_hourly_gzip(fastly_api) -> None:  # type: ignore[no-untyped-def]
    url, received = fastly_api
    env = {
        "PATH": os.environ["PATH"],
        "FASTLY_API_URL": url,
        "FASTLY_API_TOKEN": "token-never-on-argv",
        "FASTLY_SERVICE_ID": "SU1Z0isxPaozGVKXdv0eY",
        "FASTLY_VERSION": "42",
        "DLCDN_S3_BUCKET": "alpine-logs",
        "DLCDN_S3_DOMAIN": "s3.example.org",
        "DLCDN_S3_ACCESS_KEY": "AKIAEXAMPLE",
        "DLCDN_S3_SECRET_KEY": "secret/with+chars=",
    }
    out = subprocess.run(
        ["bash", str(FASTLY / "create-s3-endpoint.sh")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (cond_path, cond, key1), (s3_path, s3, key2) = received
    assert key1 == key2 == "token-never-on-argv"
    assert cond_path == "/service/SU1Z0isxPaozGVKXdv0eY/version/42/condition"
    assert cond["statement"] == ["fastly.ff.visits_this_service == 0"]
    assert s3_path == "/service/SU1Z0isxPaozGVKXdv0eY/version/42/logging/s3"
    assert s3["format"] == [FORMAT]
    expected = {
        "format_version": "2", "message_type": "blank", "period": "3600",
        "compression_codec": "gzip", "response_condition": cond["name"][0],
        "bucket_name": "alpine-logs", "domain": "s3.example.org", "path": "/dl-cdn/",
        "access_key": "AKIAEXAMPLE", "secret_key": "secret/with+chars=",
    }  # fmt: skip
    assert {k: s3[k][0] for k in expected} == expected

    missing = subprocess.run(
        ["bash", str(FASTLY / "create-s3-endpoint.sh")],
        env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 2 and "set FASTLY_API_TOKEN" in missing.stderr
