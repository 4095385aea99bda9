"""Does history slow the day? Day N+1's ingest and aggregates with 7 and with 365 days already in
the warehouse, in the same command.

    python benchmarks/bench_history.py [--history-lines 20000] [--day-lines 200000] [--runs 5]

Builds one warehouse from generated logs (one file per day, ingested and aggregated in order, as
the daily job does), snapshots it after 7 days and after 365, then runs day N+1 on each snapshot
in a fresh child process per run (as a Dagster run is): `ingest_file` of the new day's file,
its `daily_traffic` partition, and the `weekly_traffic` week that holds it. Prints medians and
the 365/7 ratio of each step (target: within 10%).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START = dt.date(2025, 1, 6)  # a Monday: weeks line up with ISO weeks
SNAPSHOTS = (7, 365)

CHILD = r"""
import datetime as dt, json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from pipeline.warehouse import aggregates
from pipeline.ingest.enrich import open_enrichment
from pipeline.ingest.run import ingest_file
from pipeline.settings import load
from pipeline.warehouse.store import Warehouse
wh, path, day = Warehouse(Path(sys.argv[1])), Path(sys.argv[2]), dt.date.fromisoformat(sys.argv[3])
s = load()
geo, key = open_enrichment(s)
out = {}
t = time.perf_counter()
r = ingest_file(path, wh, s, geo=geo, ip_key=key, force=True)
out["ingest"] = time.perf_counter() - t
t = time.perf_counter()
aggregates.build_daily_traffic(wh, day)
out["daily_traffic"] = time.perf_counter() - t
t = time.perf_counter()
aggregates.build_weekly_traffic(wh, day - dt.timedelta(days=day.weekday()))
out["weekly_traffic"] = time.perf_counter() - t
out["lines"] = r.lines_total
print(json.dumps(out))
"""


def child(warehouse: Path, log: Path, day: dt.date) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(warehouse), str(log), day.isoformat()],
        capture_output=True,
        cwd=REPO,
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr.decode()[-2000:]}")
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


def build_history(data: Path, history_lines: int, seed: int) -> dict[int, Path]:
    """Generated logs for 365 days, ingested and aggregated day by day; snapshots per SNAPSHOTS."""
    from pipeline.ingest.enrich import open_enrichment
    from pipeline.ingest.run import ingest_file
    from pipeline.settings import load
    from pipeline.synthetic.generate import generate
    from pipeline.warehouse import aggregates
    from pipeline.warehouse.store import Warehouse

    snaps = {n: data / f"warehouse-{n}d" for n in SNAPSHOTS}
    if all((p / "DONE").exists() for p in snaps.values()):
        return snaps
    logs = data / "logs"
    days = max(SNAPSHOTS)
    if not (logs / "DONE").exists():
        shutil.rmtree(logs, ignore_errors=True)
        print(f"generating {days} days x {history_lines:,} lines ...", flush=True)
        generate(logs, START, days, history_lines, seed=seed)
        (logs / "DONE").touch()
    work = data / "building"
    shutil.rmtree(work, ignore_errors=True)
    wh = Warehouse(work)
    s = load()
    geo, key = open_enrichment(s)
    started = time.monotonic()
    for i in range(days):
        day = START + dt.timedelta(days=i)
        ingest_file(next(logs.glob(f"*-{day}.log")), wh, s, geo=geo, ip_key=key)
        aggregates.build_daily_traffic(wh, day)
        if day.weekday() == 6:
            aggregates.build_weekly_traffic(wh, day - dt.timedelta(days=6))
        if i + 1 in snaps:
            shutil.rmtree(snaps[i + 1], ignore_errors=True)
            shutil.copytree(work, snaps[i + 1], symlinks=True)
            (snaps[i + 1] / "DONE").touch()
        if (i + 1) % 30 == 0:
            print(f"  {i + 1} days built, {time.monotonic() - started:.0f} s", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return snaps


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--history-lines", type=int, default=20_000, help="lines per history day")
    ap.add_argument("--day-lines", type=int, default=200_000, help="lines of day N+1")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data-dir", type=Path, default=REPO / "bench-data" / "history")
    args = ap.parse_args()

    data = args.data_dir / f"{args.history_lines}-{args.seed}"
    snaps = build_history(data, args.history_lines, args.seed)
    # One new day for both snapshots (the day after the longer history), so that both ingest the
    # same bytes: only the history differs.
    day = START + dt.timedelta(days=max(SNAPSHOTS))
    day_dir = data / f"day-{day}-{args.day_lines}"
    if not (day_dir / "DONE").exists():
        from pipeline.synthetic.generate import generate

        generate(day_dir, day, 1, args.day_lines, seed=args.seed + 1)
        (day_dir / "DONE").touch()
    log = next(day_dir.glob("*.log"))
    results: dict[int, dict[str, float]] = {}
    for n, snap in snaps.items():
        runs = [child(snap, log, day) for _ in range(args.runs)]
        results[n] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        files = sum(1 for _ in (snap / "requests").glob("date=*/*.parquet"))
        print(f"  {n} days of history ({files} request files): {results[n]}", flush=True)

    lo, hi = SNAPSHOTS
    print()
    print(
        f"day N+1: {int(results[lo]['lines']):,} lines; history days of "
        f"{args.history_lines:,} lines; median of {args.runs} runs, each in a fresh process"
    )
    print(f"| step | {lo} days s | {hi} days s | {hi}/{lo} |")
    print("|---|---|---|---|")
    for step in ("ingest", "daily_traffic", "weekly_traffic"):
        a, b = results[lo][step], results[hi][step]
        print(f"| {step} | {a:.3f} | {b:.3f} | {b / a:.2f}x |")
    a = sum(results[lo][s] for s in ("ingest", "daily_traffic"))
    b = sum(results[hi][s] for s in ("ingest", "daily_traffic"))
    print(f"| ingest + daily_traffic | {a:.3f} | {b:.3f} | {b / a:.2f}x |")


if __name__ == "__main__":
    main()
