"""Ingest throughput against baselines on the same file, in the same command.

    python benchmarks/bench_ingest.py [--lines 5000000] [--format combined] [--gzip] [--runs 3]

Each contender runs in a fresh child process (so peak RSS is its own, read from wait4) on the same
generated file:
  dlcdn      `pipeline.ingest.run.ingest_file` with full enrichment (GeoIP, hashing, path facts) into
             a temporary warehouse: what `dlcdn ingest` does
  polars-re  a bare polars parse: lazy line scan, one 8-group regex, sink_parquet (zstd)
  python-re  a plain Python `re` loop to Parquet, in 1 and in 2 processes (byte ranges)
  gunzip     (with --gzip) decompression only: the floor for a compressed file
  goaccess   GoAccess (the log analyser users would otherwise pick) reading the same file into its
             JSON report, every panel on; a .gz piped through `gzip -dc`, as GoAccess reads no gzip
Figures are medians over --runs; the ratios compare dlcdn with the baselines of the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The bare baselines: 8 groups each, no optional parts (PERFORMANCE-NOTES's fastest regex shape).
# Combined: the request captured whole. Fastly: the JSON read as text, in the generator's key order.
BASELINE_PATTERNS = {
    "combined": r'^(\S+) \S+ (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"',
    "fastly": (
        r'^<\d+>\S+ (\S+) [^:]*: \{"timestamp":"([^"]*)","client_ip":"([^"]*)",'
        r'"request_method":"([^"]*)","url":"([^"]*)","request_protocol":"([^"]*)",'
        r'"response_status":(\d+),"response_body_size":(\d+)'
    ),
}

CHILD_DLCDN = r"""
import sys
from pathlib import Path
from pipeline.ingest.run import ingest_file
from pipeline.settings import load
from pipeline.warehouse.store import Warehouse
from pipeline.ingest.enrich import open_enrichment
s = load()
geo, key = open_enrichment(s)
r = ingest_file(Path(sys.argv[1]), Warehouse(Path(sys.argv[2])), s, geo=geo, ip_key=key, force=True)
assert r.balanced
print(r.lines_total, r.rows_parsed)
"""

CHILD_DLCDN_NO_GEO = r"""
import sys
from pathlib import Path
from pipeline.ingest.run import ingest_file
from pipeline.settings import load
from pipeline.warehouse.store import Warehouse
from pipeline.geo.privacy import load_ip_key
r = ingest_file(Path(sys.argv[1]), Warehouse(Path(sys.argv[2])), load(), geo=None, ip_key=load_ip_key(), force=True)
print(r.lines_total, r.rows_parsed)
"""

# GeoIP on the file's distinct client addresses, as ingest does it (figures for the closing note).
CHILD_GEOIP = r"""
import sys, time
import polars as pl
from pipeline.geo.geoip import GeoIP
from pipeline.geo.privacy import client_ids
from pipeline.settings import load
lines = pl.scan_csv(sys.argv[1], has_header=False, separator="\x1f", quote_char=None,
                    schema={"line": pl.String}, encoding="utf8-lossy")
ips = (lines.select(pl.col("line").str.extract(r"^(\S+) ").alias("ip")).drop_nulls().unique()
       .collect()["ip"].to_list())
s = load()
geo = GeoIP.from_settings(s)
t = time.perf_counter(); geo.lookup(ips); g = time.perf_counter() - t
t = time.perf_counter(); client_ids(ips, b"k" * 32); h = time.perf_counter() - t
print(f"{len(ips)} distinct IPs, GeoIP {len(ips) / g:,.0f} lookups/s, hashing {len(ips) / h:,.0f}/s")
"""

CHILD_POLARS = r"""
import sys, polars as pl
src, out, pattern = sys.argv[1], sys.argv[2], sys.argv[3]
names = [f"f{i}" for i in range(8)]
lines = pl.scan_csv(src, has_header=False, separator="\x1f", quote_char=None,
                    schema={"line": pl.String}, encoding="utf8-lossy")
(lines.select(pl.col("line").str.extract_groups(pattern).struct.rename_fields(names).alias("m"))
      .unnest("m").sink_parquet(out, compression="zstd"))
print(pl.scan_parquet(out).select(pl.len()).collect().item())
"""

# The parent reads (and, for .gz, decompresses with ISA-L) 8 MiB chunks cut at newlines; each
# chunk is matched by a worker process, which writes its own Parquet part.
CHILD_PYTHON = r"""
import re, sys
import pyarrow as pa, pyarrow.parquet as pq
from concurrent.futures import ProcessPoolExecutor
src, out, pattern, procs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
names = [f"f{i}" for i in range(8)]
rx = re.compile(pattern.encode())
def part(args):
    i, chunk = args
    cols = [[] for _ in names]
    for line in chunk.split(b"\n"):
        m = rx.match(line)
        if m:
            for c, v in zip(cols, m.groups()):
                c.append(v.decode("utf-8", "replace"))
    pq.write_table(pa.table(dict(zip(names, cols))), f"{out}.{i}", compression="zstd")
    return len(cols[0])
def chunks():
    if src.endswith(".gz"):
        from isal import igzip
        f = igzip.open(src, "rb")
    else:
        f = open(src, "rb")
    rest, i = b"", 0
    with f:
        while block := f.read(8 << 20):
            block = rest + block
            cut = block.rfind(b"\n") + 1
            rest = block[cut:]
            yield i, block[:cut]
            i += 1
    if rest:
        yield i, rest
if procs == 1:
    print(sum(map(part, chunks())))
else:
    from collections import deque
    total, window = 0, deque()
    with ProcessPoolExecutor(procs) as ex:
        for c in chunks():  # at most 2 chunks per worker in flight: memory stays bounded
            window.append(ex.submit(part, c))
            if len(window) >= 2 * procs:
                total += window.popleft().result()
        total += sum(f.result() for f in window)
    print(total)
"""

CHILD_GUNZIP = r"""
import sys
from isal import igzip_threaded
n = 0
with igzip_threaded.open(sys.argv[1], "rb", threads=1) as f:
    while block := f.read(32 << 20):
        n += block.count(b"\n")
print(n)
"""


# GoAccess's format for each generated file. Fastly lines are read as text up to the body size
# (GoAccess's JSON formats take no syslog prefix); `%x` with `...%S%Z` reads the timestamp.
GOACCESS_FORMATS = {
    "combined": ["--log-format=COMBINED"],
    "fastly": [
        '--log-format=<%^>%^ %^ %^: {"timestamp":"%x","client_ip":"%h","request_method":"%m",'
        '"url":"%U","request_protocol":"%H","response_status":%s,"response_body_size":%b,%^',
        "--datetime-format=%Y-%m-%dT%H:%M:%S%Z",
    ],
}

# GoAccess in a temporary HOME (no ~/.goaccessrc), stdin closed unless a .gz is piped in; prints
# the requests it counted and the lines it could not read.
CHILD_GOACCESS = r"""
import json, os, subprocess, sys, tempfile
src, fmt = sys.argv[1], sys.argv[2:]
with tempfile.TemporaryDirectory(prefix="goaccess-") as tmp:
    report = os.path.join(tmp, "report.json")
    cmd = ["goaccess", "--no-global-config", "--no-progress", "--no-parsing-spinner", *fmt,
           "-o", report]
    env = {**os.environ, "HOME": tmp, "TZ": "UTC"}
    if src.endswith(".gz"):
        unzip = subprocess.Popen(["gzip", "-dc", src], stdout=subprocess.PIPE)
        subprocess.run([*cmd, "-"], stdin=unzip.stdout, env=env, check=True, capture_output=True)
        unzip.stdout.close()
        assert unzip.wait() == 0
    else:
        subprocess.run([*cmd, src], stdin=subprocess.DEVNULL, env=env, check=True,
                       capture_output=True)
    general = json.load(open(report, encoding="utf-8", errors="replace"))["general"]
print(general["total_requests"], general["failed_requests"])
"""


def run_child(code: str, *args: str) -> str:
    """Runs code in a fresh interpreter and returns its stdout."""
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr.decode()[-2000:]}")
    return proc.stdout.decode().strip()


# Runs `python -c CODE ARGS...` and prints its wall time, its own peak RSS (getrusage of the
# child, which the parent's figure would mix with its own) and its output on one line.
RSS_WRAPPER = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.run([sys.executable, '-c', sys.argv[1], *sys.argv[2:]], capture_output=True)\n"
    "wall = time.perf_counter() - t\n"
    "if p.returncode: sys.stderr.write(p.stderr.decode()); sys.exit(1)\n"
    "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
    "print(wall, rss, p.stdout.decode().strip().replace(chr(10), ' '))\n"
)


def measured(code: str, *args: str) -> tuple[float, int, str]:
    """Wall time, peak RSS and output of `code` run in a fresh interpreter (see RSS_WRAPPER)."""
    wall, rss, rest = run_child(RSS_WRAPPER, code, *args).split(" ", 2)
    return float(wall), int(rss), rest


def ensure_data(data_dir: Path, lines: int, fmt: str, gzip: bool, seed: int) -> Path:
    from pipeline.synthetic.generate import generate

    tag = f"{fmt}-{lines}-{seed}{'-gz' if gzip else ''}"
    target = data_dir / tag
    done = target / "DONE"
    if not done.exists():
        shutil.rmtree(target, ignore_errors=True)
        print(f"generating {lines:,} {fmt} lines into {target} ...", flush=True)
        files = generate(target, dt.date(2026, 11, 16), 1, lines, fmt=fmt, seed=seed, gzip=gzip)
        done.write_text(files[0].name)
    return target / done.read_text().strip()


def file_arguments(description: str | None) -> argparse.ArgumentParser:
    """A parser with the options that choose the generated file (shared by the benchmarks)."""
    ap = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lines", type=int, default=5_000_000)
    ap.add_argument("--format", choices=["combined", "fastly"], default="combined")
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data-dir", type=Path, default=REPO / "bench-data")
    return ap


def main() -> None:
    ap = file_arguments(__doc__)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--skip-python", action="store_true", help="skip the slow Python re baselines")
    ap.add_argument("--skip-goaccess", action="store_true", help="skip GoAccess")
    args = ap.parse_args()

    src = ensure_data(args.data_dir, args.lines, args.format, args.gzip, args.seed)
    size = src.stat().st_size
    contenders: list[tuple[str, str, list[str]]] = []
    with tempfile.TemporaryDirectory(prefix="dlcdn-bench-") as tmp:
        t = Path(tmp)
        contenders.append(("dlcdn ingest", CHILD_DLCDN, [str(src), str(t / "wh")]))
        contenders.append(("dlcdn no GeoIP", CHILD_DLCDN_NO_GEO, [str(src), str(t / "wh")]))
        pattern = BASELINE_PATTERNS[args.format]
        contenders.append(
            ("polars regex", CHILD_POLARS, [str(src), str(t / "pl.parquet"), pattern])
        )
        if not args.skip_python:
            for procs in ("1", "2"):
                contenders.append(
                    (f"python re x{procs}", CHILD_PYTHON, [str(src), str(t / "py"), pattern, procs])
                )
        if args.gzip:
            contenders.append(("gunzip only", CHILD_GUNZIP, [str(src)]))
        if not args.skip_goaccess:
            if shutil.which("goaccess") is None:
                raise SystemExit(
                    "goaccess is not installed: `make system-deps`, or --skip-goaccess"
                )
            contenders.append(
                ("goaccess", CHILD_GOACCESS, [str(src), *GOACCESS_FORMATS[args.format]])
            )
        results: dict[str, tuple[float, int, str]] = {}
        for name, code, cargs in contenders:
            walls, rsss, out = [], [], ""
            for _ in range(args.runs):
                shutil.rmtree(t / "wh", ignore_errors=True)
                wall, rss, out = measured(code, *cargs)
                walls.append(wall)
                rsss.append(rss)
            results[name] = (statistics.median(walls), max(rsss), out)
            print(f"  {name}: {statistics.median(walls):.2f} s", flush=True)

    n = int(results["dlcdn ingest"][2].split()[0])  # lines in the file (days vary in volume)
    print()
    print(
        f"file: {src.name}, {n:,} lines, {size / 1e6:,.0f} MB on disk, {os.cpu_count()} cores, "
        f"median of {args.runs} run(s)"
    )
    print(
        f"| {'contender':<14} | {'wall s':>7} | {'lines/s':>10} | {'MB/s':>7} | {'peak RSS MiB':>12} | output |"
    )
    print(f"|{'-' * 16}|{'-' * 9}|{'-' * 12}|{'-' * 9}|{'-' * 14}|--------|")
    for name, (wall, rss, out) in results.items():
        print(
            f"| {name:<14} | {wall:7.2f} | {n / wall:10,.0f} | {size / 1e6 / wall:7.1f} | {rss / 2**20:12,.0f} | {out} |"
        )
    ours = results["dlcdn ingest"][0]
    if args.format == "combined" and not args.gzip:
        print()
        print("enrichment on distinct clients:", run_child(CHILD_GEOIP, str(src)))
    print()
    for name, (wall, _, _) in results.items():
        if not name.startswith("dlcdn"):
            print(f"dlcdn ingest speed / {name} speed = {wall / ours:.2f}x")


if __name__ == "__main__":
    main()
