"""Does memory grow with the file? Peak and running RSS of `dlcdn ingest` on a generated file and
on the same file repeated N times, in the same command.

    python benchmarks/bench_memory.py [--lines 20000000] [--gzip] [--repeat 10]

The repeated file is the generated one concatenated N times (gzip members in a row for --gzip,
which the reader takes as one stream): N times the lines, with the same mix of clients and
URLs. Each ingest runs in a fresh child process with full enrichment; its RSS is read from /proc
every 2 s. Prints the RSS at each tenth of the run, the peak (from wait4), and the growth per
million lines past the first fifth of the run (target: flat, and under 1 GiB at every size).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import (  # noqa: E402
    CHILD_DLCDN,
    REPO,
    RSS_WRAPPER,
    ensure_data,
    file_arguments,
)


def repeated(src: Path, times: int) -> Path:
    """The file concatenated `times` times, next to it (made once)."""
    if times == 1:
        return src
    target = src.with_name(f"x{times}-{src.name}")
    if not target.exists():
        print(f"writing {target} ({times} x {src.stat().st_size / 1e9:.1f} GB) ...", flush=True)
        tmp = target.with_name(target.name + ".tmp")
        with open(tmp, "wb") as out:
            for _ in range(times):
                with open(src, "rb") as f:
                    shutil.copyfileobj(f, out, 16 << 20)
        tmp.rename(target)
    return target


def sampled_run(src: Path, warehouse: Path) -> tuple[float, int, list[tuple[float, int]], int]:
    """Wall time, peak RSS (bytes), RSS samples (s, bytes) and lines of one child ingest."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", RSS_WRAPPER, CHILD_DLCDN, str(src), str(warehouse)],
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    samples: list[tuple[float, int]] = []
    child: int | None = None  # the ingest itself, a child of the wrapper
    while proc.poll() is None:
        if child is None:
            kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
            found = kids.read_text().split() if kids.exists() else []
            child = int(found[0]) if found else None
        if child is not None:
            try:
                status = Path(f"/proc/{child}/status").read_text()
                kib = int(status.split("VmRSS:")[1].split()[0])
                samples.append((time.perf_counter() - started, kib * 1024))
            except (FileNotFoundError, IndexError):
                pass
        time.sleep(2)
    out = proc.stdout.read().decode().split() if proc.stdout else []
    if proc.returncode:
        raise SystemExit("the ingest failed")
    wall, peak, lines = float(out[0]), int(out[1]), int(out[2])
    return wall, peak, samples, lines


def growth_per_million(samples: list[tuple[float, int]], lines: int, wall: float) -> float:
    """Least-squares slope of RSS (MiB) against lines read (millions), past the first fifth of
    the run (start-up: imports, caches and allocator pools filling)."""
    points = [(lines * t / wall / 1e6, rss / 2**20) for t, rss in samples if t > wall / 5]
    if len(points) < 2:
        return float("nan")
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else float("nan")


def main() -> None:
    ap = file_arguments(__doc__)
    ap.set_defaults(lines=20_000_000)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()

    base = ensure_data(args.data_dir, args.lines, args.format, args.gzip, args.seed)
    rows = []
    for times in sorted({1, args.repeat}):
        src = repeated(base, times)
        with tempfile.TemporaryDirectory(prefix="dlcdn-bench-") as tmp:
            wall, peak, samples, lines = sampled_run(src, Path(tmp) / "wh")
        print(f"\n{src.name}: {lines:,} lines in {wall:.0f} s, peak RSS {peak / 2**20:,.0f} MiB")
        print("| elapsed | lines (est.) | RSS MiB |")
        print("|---|---|---|")
        tenths = [samples[min(len(samples) - 1, len(samples) * k // 10)] for k in range(11)]
        for t, rss in tenths:
            print(f"| {t:5.0f} s | {lines * t / wall:13,.0f} | {rss / 2**20:7,.0f} |")
        rows.append((src.name, lines, peak, growth_per_million(samples, lines, wall)))
    print("\n| file | lines | peak RSS MiB | growth MiB per 1M lines |")
    print("|---|---|---|---|")
    for name, lines, peak, per_m in rows:
        print(f"| {name} | {lines:,} | {peak / 2**20:,.0f} | {per_m:+.2f} |")


if __name__ == "__main__":
    main()
