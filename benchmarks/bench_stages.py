"""CPU time of each ingest stage against the baselines' whole runs, and the speed that bounds.

    python benchmarks/bench_stages.py [--lines 5000000] [--format combined] [--gzip] [--runs 3]

The throughput targets compare wall times on this machine's cores. A wall time can only shrink to
the CPU time spread evenly over every core, so the CPU time of the stages an ingest cannot skip
sets the best speed any schedule of them can reach. In the same command, on the same generated
file, this prints:
  baselines   CPU and wall seconds of bench_ingest's bare polars regex parse and 2-process Python
              parser, each in a fresh child process
  stages      `dlcdn ingest`'s stages run one after the other in one fresh child process (so each
              one's CPU time, summed over every thread, is its own):
                read    the file's bytes -> batches of lines (decompression, newlines, UTF-8)
                parse   lines -> typed fields, and a reason for each line that does not read
                enrich  fact caches (GeoIP, hashing, path facts, client kinds) and their joins
                write   the enriched rows to Parquet with the warehouse's writer (35 columns)
  bounds      the write alone, read + write, and read + parse + write (no enrichment at all)
              spread perfectly over every core: the fastest an ingest that writes these rows
              could be, as a multiple of each baseline's speed
The read stage holds the whole file's lines in memory before parsing them (so that the reader's
thread does not run alongside the other stages): about the file's size in RSS.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import (  # noqa: E402
    BASELINE_PATTERNS,
    CHILD_POLARS,
    CHILD_PYTHON,
    ensure_data,
    file_arguments,
    run_child,
)

STAGES = ("read", "parse", "enrich", "write")

CHILD_STAGES = r"""
import json, resource, sys, time
from pathlib import Path
from pipeline.ingest import enrich, parse
from pipeline.ingest.enrich import open_enrichment
from pipeline.ingest.formats import detect_format
from pipeline.ingest.reader import ReadState, iter_batches, sample_lines
from pipeline.schema import REQUESTS
from pipeline.settings import load
from pipeline.warehouse.store import PartitionWriter, Warehouse, new_staging

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

path, root = Path(sys.argv[1]), Path(sys.argv[2])
s = load()
geo, key = open_enrichment(s)
fmt = detect_format(str(path), sample_lines(path))
ctx = enrich.Context(file_id="0" * 24, source="bench", fmt=fmt, ip_key=key, geo=geo)
writer = PartitionWriter(new_staging(Warehouse(root), ctx.file_id), "requests", REQUESTS)
spent = dict.fromkeys(("read", "parse", "enrich", "write"), 0.0)
t0, w0 = cpu(), time.perf_counter()
batches = list(iter_batches(path, ReadState()))
spent["read"] = cpu() - t0
rows = 0
while batches:
    batch = batches.pop(0)
    t = cpu()
    fields = parse.parse_lines(batch, fmt)
    spent["parse"] += cpu() - t
    t = cpu()
    rows_of_batch = enrich.enrich(fields, ctx)
    spent["enrich"] += cpu() - t
    t = cpu()
    writer.write(rows_of_batch.requests)
    spent["write"] += cpu() - t
    rows += rows_of_batch.requests.height
t = cpu()
writer.close()
spent["write"] += cpu() - t
print(json.dumps({"cpu": spent, "wall": time.perf_counter() - w0, "rows": rows}))
"""


def cpu_run(code: str, *args: str) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system, every thread and worker) and stdout of `code`
    run in a fresh interpreter (bench_ingest's `run_child`)."""
    before = os.times()
    out = run_child(code, *args)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return after.elapsed - before.elapsed, cpu, out


def main() -> None:
    ap = file_arguments(__doc__)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    src = ensure_data(args.data_dir, args.lines, args.format, args.gzip, args.seed)
    pattern = BASELINE_PATTERNS[args.format]
    cores = os.cpu_count() or 1
    baselines: dict[str, list[tuple[float, float]]] = {"polars regex": [], "python re x2": []}
    stages: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="dlcdn-stages-") as tmp:
        t = Path(tmp)
        for run in range(args.runs):
            wall, cpu, _ = cpu_run(CHILD_POLARS, str(src), str(t / "pl.parquet"), pattern)
            baselines["polars regex"].append((wall, cpu))
            wall, cpu, _ = cpu_run(CHILD_PYTHON, str(src), str(t / "py"), pattern, "2")
            baselines["python re x2"].append((wall, cpu))
            _, _, out = cpu_run(CHILD_STAGES, str(src), str(t / f"wh{run}"))
            result = json.loads(out)
            stages.append(result["cpu"])
            spent = ", ".join(f"{s} {result['cpu'][s]:.2f}" for s in STAGES)
            print(f"  run {run + 1}: {result['rows']:,} rows; stage CPU s: {spent}", flush=True)

    print()
    print(
        f"file: {src.name}, {src.stat().st_size / 1e6:,.0f} MB, {cores} cores, median of {args.runs}"
    )
    walls = {name: statistics.median([w for w, _ in runs]) for name, runs in baselines.items()}
    cpus = {name: statistics.median([c for _, c in runs]) for name, runs in baselines.items()}
    print("| baseline | wall s | CPU s |")
    print("|---|---|---|")
    for name in baselines:
        print(f"| {name} | {walls[name]:.2f} | {cpus[name]:.2f} |")
    print()
    cpu = {s: statistics.median([run[s] for run in stages]) for s in STAGES}
    polars_cpu = cpus["polars regex"]
    print("| dlcdn ingest stage (one after the other) | CPU s | x the polars regex parse's CPU |")
    print("|---|---|---|")
    for s in STAGES:
        print(f"| {s} | {cpu[s]:.2f} | {cpu[s] / polars_cpu:.2f}x |")
    total = sum(cpu.values())
    print(f"| all four | {total:.2f} | {total / polars_cpu:.2f}x |")
    print()
    print(
        f"| stages that cannot be skipped, spread perfectly over {cores} cores | wall s at least |"
        + "".join(f" at most x the {name} |" for name in walls)
    )
    print("|---|---|" + "---|" * len(walls))
    for kept in (("write",), ("read", "write"), ("read", "parse", "write")):
        floor = sum(cpu[s] for s in kept) / cores
        print(
            f"| {' + '.join(kept)} | {floor:.2f} |"
            + "".join(f" {w / floor:.2f}x |" for w in walls.values())
        )


if __name__ == "__main__":
    main()
