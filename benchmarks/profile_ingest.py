"""Where does ingest spend its time? py-spy samples `dlcdn ingest` of a generated file.

    python benchmarks/profile_ingest.py [--lines 5000000] [--format combined] [--rate 100]

Runs the same child as bench_ingest's `dlcdn ingest` contender under `py-spy record` (every
thread, active samples only) and prints, for the functions of this project, the share of samples
they were on the stack (inclusive: time inside polars, pyarrow or maxminddb counts for the Python
function that called it). Shares add up to more than 100%: a function and its callers all count.
The raw stacks are kept beside the data (`profile-*.txt`) for a flame graph tool.
"""

from __future__ import annotations

import collections
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import CHILD_DLCDN, REPO, ensure_data, file_arguments  # noqa: E402

FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:]+):\d+\)$")


def summarise(raw: Path, top: int) -> None:
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        seen = set()
        for frame in stack.split(";"):
            m = FRAME.match(frame.strip())
            if m is None:
                continue
            file = m["file"]
            for pkg in ("pipeline/", "assets/"):
                if pkg in file:
                    name = f"{pkg}{file.split(pkg, 1)[1]}:{m['func']}"
                    break
            else:
                continue
            if name not in seen:
                seen.add(name)
                inclusive[name] += n
    print(f"{total:,} samples over every active thread")
    print(f"| {'function':<60} | share |")
    print(f"|{'-' * 62}|-------|")
    for name, n in inclusive.most_common(top):
        print(f"| {name:<60} | {100 * n / total:4.1f}% |")


def main() -> None:
    ap = file_arguments(__doc__)
    ap.add_argument("--rate", type=int, default=100, help="samples per second")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()

    src = ensure_data(args.data_dir, args.lines, args.format, args.gzip, args.seed)
    raw = src.parent / f"profile-{src.name}.txt"
    spy = Path(sys.executable).parent / "py-spy"
    with tempfile.TemporaryDirectory(prefix="dlcdn-profile-") as tmp:
        cmd = [str(spy), "record", "--format", "raw", "--rate", str(args.rate), "-o", str(raw)]
        cmd += ["--", sys.executable, "-c", CHILD_DLCDN, str(src), str(Path(tmp) / "wh")]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True)
        if proc.returncode != 0:
            raise SystemExit(f"py-spy failed:\n{proc.stderr.decode()[-2000:]}")
    print(f"profile of dlcdn ingest {src.name} ({raw} holds the stacks)")
    summarise(raw, args.top)


if __name__ == "__main__":
    main()
