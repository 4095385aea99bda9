"""The synthetic log generator: deterministic, exact, realistic enough, and marked synthetic.

Everything runs the real generator on small inputs (a few seconds in all); shares are checked with
wide bounds, since they are draws.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import gzip
import ipaddress
import json
import re
from collections import Counter
from importlib import resources
from pathlib import Path

import polars as pl
import pytest

from pipeline.synthetic.generate import generate

START = dt.date(2026, 11, 16)  # a Monday; the week has a weekend
COMBINED = re.compile(
    r"^(?P<ip>\S+) - - \[(?P<time>[^\]]+)\] "
    r'"(?P<method>[A-Z]+) (?P<path>/\S*) (?P<proto>HTTP/[\d.]+)" '
    r'(?P<status>\d{3}) (?P<bytes>\d+) "(?P<referer>[^"]*)" "(?P<ua>[^"]*)"$'
)
SYSLOG = re.compile(r"^<134>(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) cache-[a-z]{3}-[a-z]{4}\d{7} \S+: ")
FASTLY_KEYS = [
    "timestamp", "client_ip", "request_method", "url", "request_protocol", "response_status",
    "response_body_size", "request_user_agent", "request_referer", "server_datacenter",
    "response_state", "time_elapsed", "host",
]  # fmt: skip


def _lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    assert data.endswith(b"\n")
    return data.split(b"\n")[:-1]


def _combined_rows(path: Path) -> tuple[list[dict[str, str]], int]:
    """Well-formed request lines as dicts, and how many lines were not."""
    rows, bad = [], 0
    for raw in _lines(path):
        m = COMBINED.match(raw.decode("utf-8", "replace"))
        if m:
            rows.append(m.groupdict())
        else:
            bad += 1
    return rows, bad


def _fastly_rows(path: Path) -> tuple[list[dict], int]:
    rows, bad = [], 0
    for raw in _lines(path):
        text = raw.decode("utf-8", "replace")
        head = SYSLOG.match(text)
        try:
            record = json.loads(text[head.end() :]) if head else None
        except json.JSONDecodeError:
            record = None
        if record is None:
            bad += 1
        else:
            rows.append(record)
    return rows, bad


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A week of combined logs (both weekend days, and offset days among them)."""
    out = tmp_path_factory.mktemp("combined")
    return generate(out, START, 7, 30_000, fmt="combined", seed=7)


@pytest.fixture(scope="module")
def fastly_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fastly")
    return generate(out, START, 1, 40_000, fmt="fastly", seed=7)[0]


@pytest.fixture(scope="module")
def networks() -> dict[int, list[tuple[int, int, str]]]:
    """The shipped client networks as sorted (first, last, country) per IP version."""
    text = resources.files("pipeline.data").joinpath("country_networks.csv").read_text()
    out: dict[int, list[tuple[int, int, str]]] = {4: [], 6: []}
    for row in csv.DictReader(text.splitlines()):
        net = ipaddress.ip_network(row["cidr"])
        out[net.version].append(
            (int(net.network_address), int(net.broadcast_address), row["country"])
        )
    for nets in out.values():
        nets.sort()
    return out


def _country(networks: dict[int, list[tuple[int, int, str]]], ip: str) -> str | None:
    addr = ipaddress.ip_address(ip)
    nets = networks[addr.version]
    i = bisect.bisect_right(nets, (int(addr), 1 << 129, "")) - 1
    if i >= 0 and nets[i][0] <= int(addr) <= nets[i][1]:
        return nets[i][2]
    return None


# Same arguments, same bytes: plain and gzip, both formats; another seed changes the content.
@pytest.mark.parametrize("fmt", ["combined", "fastly"])
def test_deterministic_by_seed(tmp_path: Path, fmt: str) -> None:
    args = dict(start=START, days=2, lines_per_day=3_000, fmt=fmt)
    a = generate(tmp_path / "a", seed=1, gzip=True, **args)
    b = generate(tmp_path / "b", seed=1, gzip=True, **args)
    c = generate(tmp_path / "c", seed=2, gzip=True, **args)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert [p.read_bytes() for p in a] != [p.read_bytes() for p in c]
    # gzip only changes the container: the plain run writes the same lines.
    plain = generate(tmp_path / "plain", seed=1, **args)
    assert [gzip.decompress(p.read_bytes()) for p in a] == [p.read_bytes() for p in plain]


# A day's content depends on its date and the seed, not on where the range starts.
def test_day_independent_of_range_start(tmp_path: Path) -> None:
    long = generate(tmp_path / "long", START, 3, 2_000, seed=5)
    short = generate(tmp_path / "short", START + dt.timedelta(days=2), 1, 2_000, seed=5)
    assert long[2].name == short[0].name
    assert long[2].read_bytes() == short[0].read_bytes()


# One file per UTC day with the documented name, daily_lines() lines each (weekdays above the
# weekend), and a marker file.
def test_files_names_and_line_counts(week: list[Path]) -> None:
    assert [p.name for p in week] == [
        f"synthetic-dl-cdn-combined-{START + dt.timedelta(days=i)}.log" for i in range(7)
    ]
    counts = [len(_lines(path)) for path in week]
    assert all(25_000 < n < 40_000 for n in counts), counts
    assert min(counts[:5]) > max(counts[5:])  # the weekend is quieter
    marker = (week[0].parent / "SYNTHETIC.txt").read_text()
    assert "SYNTHETIC" in marker and "seed:          7" in marker and "DB-IP" in marker


# progress() gets the running total after each block; bad arguments fail loudly.
def test_progress_and_bad_arguments(tmp_path: Path) -> None:
    seen: list[int] = []
    files = generate(tmp_path, START, 2, 1_500, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == sum(len(_lines(f)) for f in files)
    with pytest.raises(ValueError, match="format"):
        generate(tmp_path, START, 1, 10, fmt="apache")
    with pytest.raises(ValueError):
        generate(tmp_path, START, 0, 10)


# Lines are in time order within a file, and every instant falls on the file's UTC day, also on
# the days logged with a non-UTC offset.
def test_time_order_and_offsets(week: list[Path]) -> None:
    offsets = []
    for i, path in enumerate(week):
        rows, _ = _combined_rows(path)
        day_offsets = {r["time"][-5:] for r in rows}
        assert len(day_offsets) == 1  # one clock per file
        offsets += day_offsets
        times = pl.Series([r["time"] for r in rows]).str.to_datetime("%d/%b/%Y:%H:%M:%S %z")
        utc = times.dt.convert_time_zone("UTC")
        assert utc.is_sorted()
        assert set(utc.dt.date().unique().to_list()) == {START + dt.timedelta(days=i)}
    # Mostly UTC; this seed's week has two local-clock days (about one day in five).
    assert offsets.count("+0000") == 5 and len(set(offsets)) == 3


def test_fastly_time_order_and_syslog_prefix(fastly_day: Path) -> None:
    rows, _ = _fastly_rows(fastly_day)
    stamps = [r["timestamp"] for r in rows]
    assert stamps == sorted(stamps)
    assert all(re.fullmatch(r"2026-11-16T\d\d:\d\d:\d\d\.\d{3}Z", s) for s in stamps)


# Fastly lines: exactly the documented keys and JSON types; POPs and cache states as Fastly names
# them; HIT is the common state and is faster than MISS.
def test_fastly_records(fastly_day: Path) -> None:
    rows, bad = _fastly_rows(fastly_day)
    assert 0.0002 <= bad / (len(rows) + bad) <= 0.005
    for r in rows[:2000]:
        assert list(r) == FASTLY_KEYS
        assert isinstance(r["response_status"], int) and isinstance(r["time_elapsed"], int)
        assert isinstance(r["response_body_size"], int)
        assert r["request_referer"] is None or r["request_referer"].startswith("https://")
        assert r["host"] == "dl-cdn.alpinelinux.org"
        assert r["request_protocol"] in {"HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/3"}
        assert re.fullmatch(r"[A-Z]{3}", r["server_datacenter"])
    frame = pl.DataFrame(rows, infer_schema_length=None)
    states = frame["response_state"].value_counts(normalize=True)
    share = dict(zip(states["response_state"], states["proportion"], strict=True))
    assert share["HIT"] > 0.7 and share.get("MISS", 0) > 0.02
    known = {"HIT", "MISS", "PASS", "HIT-STALE", "HIT-CLUSTER", "MISS-CLUSTER", "ERROR"}
    assert set(share) <= known
    median = frame.group_by("response_state").agg(pl.col("time_elapsed").median())
    med = dict(zip(median["response_state"], median["time_elapsed"], strict=True))
    assert med["MISS"] > med["HIT"]


# The mixes the analyses rely on: apk dominates, x86_64 + aarch64 dominate, APKINDEX is the most
# requested file with many 304s, a few % 404, ~0.1% malformed lines.
def test_realistic_shares(week: list[Path]) -> None:
    rows, bad = _combined_rows(week[2])
    total = len(rows) + bad
    assert 0.0002 <= bad / total <= 0.005
    ua = Counter(r["ua"] for r in rows)
    assert 0.6 <= ua["libfetch/2.0"] / len(rows) <= 0.8
    assert {"Wget", "-"} <= set(ua) and any(u.startswith("curl/") for u in ua)
    arches = Counter(
        m.group(1)
        for r in rows
        if (m := re.match(r"/alpine/[^/]+/(?:main|community|testing)/([^/]+)/", r["path"]))
    )
    assert (arches["x86_64"] + arches["aarch64"]) / sum(arches.values()) > 0.7
    assert arches["x86_64"] > arches["aarch64"] > arches["x86"] > 0
    files = Counter(r["path"].rsplit("/", 1)[-1] for r in rows)
    assert files.most_common(1)[0][0] == "APKINDEX.tar.gz"
    index = [r for r in rows if r["path"].endswith("/APKINDEX.tar.gz")]
    not_modified = [r for r in index if r["status"] == "304"]
    assert 0.2 <= len(not_modified) / len(index) <= 0.8
    assert all(r["bytes"] == "0" for r in not_modified)
    statuses = Counter(r["status"] for r in rows)
    assert 0.005 <= statuses["404"] / len(rows) <= 0.08
    branches = Counter(r["path"].split("/")[2] for r in rows if r["path"].startswith("/alpine/v"))
    assert {"v3.0", "v3.10", "v3.15", "v3.24"} <= set(branches)  # EOL tail and the newest


# Weekends: builds follow office hours, so fewer package bytes; servers keep checking in, so more
# of the (fixed number of) lines are 304s. (Image bytes are too heavy-tailed to test at this size.)
def test_weekly_cycle(week: list[Path]) -> None:
    package_bytes, not_modified, lines = [], [], []
    for path in week:
        rows, _ = _combined_rows(path)
        package_bytes.append(sum(int(r["bytes"]) for r in rows if r["path"].endswith(".apk")))
        not_modified.append(sum(r["status"] == "304" for r in rows))
        lines.append(len(rows))
    assert sum(package_bytes[5:]) / 2 < 0.95 * sum(package_bytes[:5]) / 5
    # servers keep checking in at weekends while builds stop: a larger share of 304s
    assert sum(not_modified[5:]) / sum(lines[5:]) > 1.2 * sum(not_modified[:5]) / sum(lines[:5])


# Clients repeat over the day; every client address lies in one of the shipped networks, and
# every continent is present.
@pytest.mark.parametrize("fmt", ["combined", "fastly"])
def test_client_addresses(
    fmt: str, week: list[Path], fastly_day: Path, networks: dict[int, list[tuple[int, int, str]]]
) -> None:
    if fmt == "combined":
        ips = [r["ip"] for r in _combined_rows(week[0])[0]]
    else:
        ips = [r["client_ip"] for r in _fastly_rows(fastly_day)[0]]
    distinct = set(ips)
    assert len(distinct) < len(ips) / 5
    countries = {ip: _country(networks, ip) for ip in distinct}
    assert None not in countries.values(), [ip for ip, c in countries.items() if c is None][:5]
    assert any(":" in ip for ip in distinct)  # IPv6 clients too
    text = resources.files("pipeline.data").joinpath("country_networks.csv").read_text()
    continent = {r["country"]: r["continent"] for r in csv.DictReader(text.splitlines())}
    assert {continent[c] for c in countries.values()} == {"AF", "AS", "EU", "NA", "OC", "SA"}


# Three CI networks (/24s) each make a few % of all requests: the heavy hitters.
def test_heavy_hitters(week: list[Path]) -> None:
    rows, _ = _combined_rows(week[1])
    per_24 = Counter(r["ip"].rsplit(".", 1)[0] for r in rows if ":" not in r["ip"])
    top = [n / len(rows) for _, n in per_24.most_common(4)]
    assert all(0.015 <= s <= 0.06 for s in top[:3]) and top[3] < 0.015


# Malformed kinds as real edges log them: TLS bytes escaped the nginx way, 408 without a request,
# and raw bytes that are not UTF-8; fastly: JSON cut short and lines without JSON.
def test_malformed_kinds(tmp_path: Path) -> None:
    path = generate(tmp_path, START, 1, 60_000, fmt="combined", seed=3)[0]
    lines = _lines(path)
    assert any(b'"\\x16\\x03\\x01' in line and b'" 400 157 "-" "-"' in line for line in lines)
    assert any(line.endswith(b'"-" 408 0 "-" "-"') for line in lines)
    undecodable = 0
    for line in lines:
        try:
            line.decode()
        except UnicodeDecodeError:
            undecodable += 1
    assert undecodable >= 1
    path = generate(tmp_path / "f", START, 1, 60_000, fmt="fastly", seed=3)[0]
    texts = [line.decode("utf-8", "replace") for line in _lines(path)]
    assert any(SYSLOG.match(t) and "{" not in t for t in texts)  # no JSON
    assert any(t.startswith("<134>") and "{" in t and not t.endswith("}") for t in texts)
