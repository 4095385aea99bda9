"""Questions from the rollups against the same questions as raw scans, at two volumes.

    python benchmarks/bench_queries.py [--lines-per-day 2000000] [--second 500000] [--days 28]

For each volume, builds (once: cached under bench-data/queries/) a warehouse of generated Fastly
days with `dlcdn generate` and `dlcdn ingest` (which builds the rollups), then times, warm, in
one process: every library question in sql/ over the whole range, from the rollups and from its
raw scan (sql/raw/), and whether the two agree; the weekly report, `dlcdn budget` and `dlcdn
placement --k 3` with the rollups and with raw scans (the sql/ files swapped for sql/raw/), the
report reading the week's placement decision as the weekly job does (the decision's solve is
timed on its own); the rollups' size beside the raw requests'; rebuilding one day's rollups.
Then the rollup times of both volumes side by side, and the start time of `dlcdn sql "select 1"`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
START = dt.date(2026, 10, 19)  # a Monday: the 28 days are ISO weeks 2026-W43 to W46
KEY = "bench-queries-key-0123456789abcdef"

# Every library question with its parameters besides the range (the report's, where it has some).
QUESTIONS: dict[str, dict[str, object]] = {
    "traffic_by_country": {"grain": "week"},
    "traffic_by_subregion": {"grain": "week"},
    "traffic_by_asn": {"grain": "week", "limit": 20},
    "traffic_by_arch": {},
    "ci_arch_share": {"grain": "week"},
    "traffic_by_branch": {},
    "traffic_by_repo": {},
    "traffic_by_file_kind": {},
    "traffic_by_client_kind": {},
    "release_adoption": {"grain": "week"},
    "cache_by_pop": {},
    "origin_bytes_by_region": {},
    "top_packages": {"limit": 50},
    "top_release_artefacts": {"limit": 50},
    "heavy_hitters": {"factor": 20},
    "egress_daily": {},
    "placement_demand": {},
    "placement_origin_demand": {},
    "report_headline": {},
    "traffic_by_day": {},
}


def _env(wh: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLCDN_")}
    return env | {"DLCDN_WAREHOUSE": str(wh), "DLCDN_IP_KEY": KEY}


def ensure_warehouse(data: Path, lines: int, days: int) -> Path:
    """Generated logs and their warehouse (rollups included), built once and reused."""
    logs, wh = data / "logs", data / "warehouse"
    if not (data / "generated.ok").exists():
        shutil.rmtree(logs, ignore_errors=True)
        print(f"generating {days} days x {lines:,} Fastly lines into {logs} ...", flush=True)
        subprocess.run(
            [BIN / "dlcdn", "generate", "--out", logs, "--start", str(START), "--days", str(days),
             "--lines-per-day", str(lines), "--format", "fastly", "--seed", "0"],
            check=True, env=_env(wh), stdout=subprocess.DEVNULL,
        )  # fmt: skip
        (data / "generated.ok").touch()
    files = sorted(logs.glob("*.log"))
    from pipeline.warehouse.store import Warehouse

    names = set(Warehouse(wh).current_manifest()["name"].to_list()) if wh.exists() else set()
    missing = [f for f in files if f.name not in names]
    if missing:
        print(f"ingesting {len(missing)} file(s) into {wh} ...", flush=True)
        subprocess.run([BIN / "dlcdn", "ingest", *missing], check=True, env=_env(wh))
    # A warehouse ingested before the rollups existed (or interrupted) catches up here.
    subprocess.run([BIN / "dlcdn", "rollup"], check=True, env=_env(wh))
    return wh


def timed(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    """Median wall time of `runs` calls after one warm-up call, and the last result."""
    result = fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


@contextlib.contextmanager
def raw_sql() -> Iterator[None]:
    """The library's statements swapped for their raw scans (sql/raw/), and the data range read
    from requests as before the rollups: what the report, budget and placement cost without them."""
    from pipeline.decisions import tables
    from pipeline.warehouse import queries

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(queries.SQL_DIR, tmp, dirs_exist_ok=True)
        for f in (queries.SQL_DIR / "raw").glob("*.sql"):
            shutil.copy(f, Path(tmp) / f.name)
        saved_dir, saved_range = queries.SQL_DIR, tables.data_range

        def raw_range(wh_root: Path) -> tuple[dt.date, dt.date]:
            lo, hi = queries.run(wh_root, "SELECT min(date), max(date) FROM requests").row(0)
            return lo, hi

        queries.SQL_DIR, tables.data_range = Path(tmp), raw_range  # type: ignore[assignment]
        try:
            yield
        finally:
            queries.SQL_DIR, tables.data_range = saved_dir, saved_range  # type: ignore[assignment]


def same_answer(
    wh: Path, name: str, params: dict[str, object], got: pl.DataFrame, want: pl.DataFrame
) -> str:
    """'yes' when every column but the client counts equals the raw scan's. Client counts are
    held to the exact distinct count (the raw scan with count(DISTINCT client_id): its own
    approx_count_distinct is an estimate too): equal below the sketch size, and the largest
    relative error above it."""
    from pipeline.warehouse import queries, rollups

    if got.shape != want.shape or got.columns != want.columns:
        return f"no ({got.shape} vs {want.shape})"
    others = [c for c in got.columns if c != "clients"]
    if not got.select(others).equals(want.select(others)):
        return "no"
    if "clients" not in got.columns:
        return "yes"
    text = (queries.SQL_DIR / "raw" / f"{name}.sql").read_text()
    exact = queries.run(
        wh, text.replace("approx_count_distinct(client_id)", "count(DISTINCT client_id)"), params
    )["clients"]
    big = exact >= rollups.SKETCH_K
    if not (got["clients"].filter(~big) == exact.filter(~big)).all():
        return "no (clients)"
    errors = (got["clients"].filter(big) / exact.filter(big) - 1).abs()
    worst = f"{100 * float(errors.max()):.1f}%" if big.any() else "none"  # type: ignore[arg-type]
    above = f"{int(big.sum())} of {len(exact)} above {rollups.SKETCH_K:,}"
    return f"yes; clients: {above}, worst error {worst}"


def bench_volume(wh: Path, runs: int, raw_runs: int) -> dict[str, dict[str, object]]:
    """Times of every question and decision from the rollups and raw, for one warehouse."""
    from pipeline.decisions import placement as placement_model
    from pipeline.decisions import tables
    from pipeline.report import build as report
    from pipeline.warehouse import queries, rollups
    from pipeline.warehouse.store import Warehouse

    lo, hi = tables.data_range(wh)
    span = {"start": lo.isoformat(), "end": hi.isoformat()}
    out: dict[str, dict[str, object]] = {}
    for name, params in QUESTIONS.items():
        p = {**span, **params}
        t_roll, got = timed(lambda n=name, p=p: queries.run(wh, queries.sql_file(n), p), runs)
        text = (queries.SQL_DIR / "raw" / f"{name}.sql").read_text()
        t_raw, want = timed(lambda t=text, p=p: queries.run(wh, t, p), raw_runs)
        out[name] = {"rollups": t_roll, "raw": t_raw, "same": same_answer(wh, name, p, got, want)}
        print(f"  {name}: {t_roll:.3f} s vs {t_raw:.3f} s raw", flush=True)

    week = f"{hi.isocalendar().year}-W{hi.isocalendar().week:02d}"
    # the week's placement decision (k 1..5 and the frontier): solved once by the weekly asset,
    # stored, then read by the report; the solve depends on demand points and sites, not traffic
    monday = hi - dt.timedelta(days=hi.weekday())
    t_decide, _ = timed(lambda: tables.weekly_placement(wh, monday, reuse=False), 1)
    out["weekly placement decision: solve, once a week"] = {
        "rollups": t_decide, "raw": None, "same": "",
    }  # fmt: skip
    print(f"  weekly placement decision: {t_decide:.3f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        decisions = {
            f"report --week {week}": lambda: report.write(report.build(wh, week), Path(tmp)),
            "budget": lambda: tables.budget_table(wh),
            "placement --k 3": lambda: tables.placement_table(wh, k_max=3),
        }
        for label, fn in decisions.items():
            t_roll, _ = timed(fn, runs)
            with raw_sql():
                t_raw, _ = timed(fn, raw_runs)
            out[label] = {"rollups": t_roll, "raw": t_raw, "same": ""}
            print(f"  {label}: {t_roll:.3f} s vs {t_raw:.3f} s raw", flush=True)
    # placement: reading the demand, and the solver (the same whatever the traffic)
    start = hi - dt.timedelta(days=27)
    p = {"start": start.isoformat(), "end": hi.isoformat()}
    t_demand, demand = timed(lambda: queries.run(wh, queries.sql_file("placement_demand"), p), runs)
    sites = placement_model.load_sites(None)
    scale = tables.DAYS_PER_MONTH / 28
    t_solve, _ = timed(
        lambda: placement_model.place(
            demand.select("latitude", "longitude", "bytes"),  # type: ignore[attr-defined]
            sites,
            3,
            tb_per_month_scale=scale,
        ),
        runs,
    )
    out["placement: demand read"] = {"rollups": t_demand, "raw": None, "same": ""}
    out["placement: solver"] = {"rollups": t_solve, "raw": None, "same": ""}
    t_build, _ = timed(lambda: rollups.build_day(Warehouse(wh), hi), 1)
    out["rebuild one day's rollups"] = {"rollups": t_build, "raw": None, "same": ""}
    return out


def sizes(wh: Path) -> tuple[int, int, dict[str, tuple[int, int]]]:
    """Raw requests rows and bytes, and (rows, bytes) per rollup."""
    from pipeline.warehouse import queries, rollups
    from pipeline.warehouse.store import Warehouse

    w = Warehouse(wh)
    raw_rows = int(queries.run(wh, "SELECT count(*) FROM requests").item())
    per = {
        name: (
            int(queries.run(wh, f"SELECT count(*) FROM {name}").item()),
            rollups.total_size(w, name),
        )
        for name in rollups.NAMES
    }
    return raw_rows, rollups.total_size(w, "requests"), per


IMPORT_FLOOR = "import polars, duckdb, pyarrow, pydantic_settings, click"


def cli_start(wh: Path, runs: int = 7) -> tuple[float, float]:
    """Median wall times of `dlcdn sql "select 1"` and of a bare `python -c` importing what any
    query needs (the floor under it), alternating, a fresh process each."""
    commands = {
        "cli": [str(BIN / "dlcdn"), "sql", "select 1"],
        "floor": [sys.executable, "-c", IMPORT_FLOOR],
    }
    times: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(runs + 1):
        for name, cmd in commands.items():
            t = time.perf_counter()
            subprocess.run(cmd, check=True, env=_env(wh), capture_output=True)
            times[name].append(time.perf_counter() - t)
    return statistics.median(times["cli"][1:]), statistics.median(times["floor"][1:])


def _s(v: object) -> str:
    return "" if v is None else f"{v:.3f}"


def print_volume(label: str, res: dict[str, dict[str, object]]) -> None:
    print(f"\n{label}\n")
    print("| question | rollups s | raw scan s | raw / rollups | same answer |")
    print("|---|---|---|---|---|")
    for name, r in res.items():
        ratio = (
            f"{r['raw'] / r['rollups']:.0f}x"  # type: ignore[operator]
            if r["raw"] is not None
            else ""
        )
        print(f"| {name} | {_s(r['rollups'])} | {_s(r['raw'])} | {ratio} | {r['same']} |")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lines-per-day", type=int, default=2_000_000)
    ap.add_argument("--second", type=int, default=500_000, help="lines per day, second volume")
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--runs", type=int, default=3, help="timed runs per question (median)")
    ap.add_argument("--raw-runs", type=int, default=2, help="timed runs per raw scan (median)")
    ap.add_argument("--data-dir", type=Path, default=REPO / "bench-data" / "queries")
    args = ap.parse_args()

    os.environ |= {"DLCDN_IP_KEY": KEY}
    print(f"load average at start: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    results, volumes = {}, {}
    for lines in (args.lines_per_day, args.second):
        wh = ensure_warehouse(args.data_dir / f"fastly-{lines}x{args.days}", lines, args.days)
        print(f"timing {wh} ...", flush=True)
        results[lines] = bench_volume(wh, args.runs, args.raw_runs)
        volumes[lines] = sizes(wh)
    start_s = cli_start(wh)

    for lines in results:
        raw_rows, raw_bytes, per = volumes[lines]
        print_volume(
            f"### {args.days} days x {lines:,} lines: {raw_rows:,} requests, "
            f"{raw_bytes / 1e9:.2f} GB of Parquet (warm, median of {args.runs} runs; raw "
            f"{args.raw_runs})",
            results[lines],
        )
        print("\n| table | rows | MB | bytes per request |")
        print("|---|---|---|---|")
        print(
            f"| requests (raw) | {raw_rows:,} | {raw_bytes / 1e6:,.1f} | {raw_bytes / raw_rows:.1f} |"
        )
        for name, (rows, size) in per.items():
            print(f"| {name} | {rows:,} | {size / 1e6:,.2f} | {size / raw_rows:.3f} |")
        total = sum(s for _, s in per.values())
        print(f"| all rollups | {sum(r for r, _ in per.values()):,} | {total / 1e6:,.2f} | "
              f"{total / raw_rows:.3f} |")  # fmt: skip

    big, small = args.lines_per_day, args.second
    print(f"\n### Rollup time at {big:,} vs {small:,} lines per day\n")
    print(f"| question | rollups s at {big:,} | at {small:,} | ratio | raw ratio |")
    print("|---|---|---|---|---|")
    for name in results[big]:
        a, b = results[big][name], results[small][name]
        raw = f"{a['raw'] / b['raw']:.1f}x" if a["raw"] is not None else ""  # type: ignore[operator]
        print(f"| {name} | {_s(a['rollups'])} | {_s(b['rollups'])} | "
              f"{a['rollups'] / b['rollups']:.2f}x | {raw} |")  # type: ignore[operator]  # fmt: skip
    cli_s, floor_s = start_s
    print(f'\n`dlcdn sql "select 1"`: {cli_s:.2f} s; `python -c "{IMPORT_FLOOR}"`: '
          f"{floor_s:.2f} s ({cli_s / floor_s:.2f}x; medians of 7, a fresh process each)")  # fmt: skip
    print(f"load average at end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
