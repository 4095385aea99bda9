"""How far off is the egress forecast when the history has a step, a new growth rate or an outage?

    python benchmarks/bench_forecast.py [--seed 0] [--log-lines 20000] [--no-logs]

For every scenario in `pipeline.synthetic.scenarios` (known curves: steady growth, +40% and -30%
steps, a change of growth rate, one-day outages, a release bump in the scored month): forecast from
the history, compare the next calendar month with its truth, and say whether the 95% interval
covers it. One scenario (the +40% step) also goes the whole way: generated log files, ingested into
a warehouse, read back through sql/egress_daily.sql. A second table puts the sixth month ahead
against its truth (the run rate a budget is set from). Prints markdown tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from pipeline.decisions.budget import TB, Forecast, forecast
from pipeline.synthetic import scenarios
from pipeline.synthetic.generate import generate

TARGET = 0.10  # next month within 10% of the truth (steady growth: 5%)
TARGET_STEADY = 0.05


def _month_row(f: Forecast, month: dt.date) -> dict:
    return f.monthly.filter(pl.col("month") == month).row(0, named=True)


def _changes(f: Forecast) -> str:
    found = getattr(f, "changes", None)
    if found is None:
        return "(not reported)"
    return "; ".join(c.describe() for c in found) or "none"


def _score(name: str, s: scenarios.Scenario, daily: pl.DataFrame) -> dict:
    history, truth = scenarios.split(s, daily)
    started = time.perf_counter()
    f = forecast(history)
    seconds = time.perf_counter() - started
    row = _month_row(f, s.truth_month)
    err = row["forecast_bytes"] / truth - 1
    target = TARGET_STEADY if s.name == "steady" else TARGET
    covered = row["lower"] <= truth <= row["upper"]
    return {
        "scenario": name,
        "month": f"{s.truth_month:%Y-%m}",
        "truth TB": f"{truth / TB:.2f}",
        "forecast TB": f"{row['forecast_bytes'] / TB:.2f}",
        "error": f"{err:+.1%}",
        "95% interval TB": f"{row['lower'] / TB:.2f}-{row['upper'] / TB:.2f}",
        "covered": "yes" if covered else "NO",
        "target met": "yes" if abs(err) <= target and covered else "NO",
        "changes found": _changes(f),
        "seconds": f"{seconds:.1f}",
        "_forecast": f,
    }


def _through_logs(s: scenarios.Scenario, lines_per_day: int, seed: int) -> pl.DataFrame:
    """The scenario's days as generated log files, ingested, read back per day from the SQL."""
    from pipeline.ingest.run import ingest_file
    from pipeline.settings import Settings
    from pipeline.warehouse import queries
    from pipeline.warehouse.store import Warehouse

    with tempfile.TemporaryDirectory(prefix="bench-forecast-") as tmp:
        days = (s.truth_end - s.first).days + 1
        files = generate(
            Path(tmp) / "landing", s.first, days, lines_per_day, seed=seed, volume=s.curve
        )
        wh = Warehouse(Path(tmp) / "wh")
        for path in files:
            ingest_file(path, wh, Settings(), geo=None, ip_key=b"k" * 32)
            path.unlink()
        params = {"start": s.first.isoformat(), "end": s.truth_end.isoformat()}
        daily = queries.run(wh.root, queries.sql_file("egress_daily"), params)
    return daily.select("date", pl.col("bytes").cast(pl.Float64))


def _print(rows: list[dict], columns: list[str]) -> None:
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    print("| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        cells = [str(r[c]).ljust(w) for c, w in zip(columns, widths, strict=True)]
        print("| " + " | ".join(cells) + " |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--log-lines", type=int, default=20_000, help="lines per generated day")
    ap.add_argument("--no-logs", action="store_true", help="skip the generated-logs scenario")
    ap.add_argument(
        "--seeds", type=int, default=0, help="also summarise seeds 0..N-1 (error spread, coverage)"
    )
    args = ap.parse_args()

    rows, ahead = [], []
    for s in scenarios.SCENARIOS:
        daily = scenarios.daily_bytes(s, args.seed, months=6)
        row = _score(s.name, s, daily)
        rows.append(row)
        sixth = s.month_end(6).replace(day=1)
        truth6 = daily.filter(pl.col("date").dt.truncate("1mo") == sixth)["bytes"].sum()
        f6 = _month_row(row["_forecast"], sixth)
        ahead.append(
            {
                "scenario": s.name,
                "month": f"{sixth:%Y-%m}",
                "truth TB": f"{truth6 / TB:.2f}",
                "forecast TB": f"{f6['forecast_bytes'] / TB:.2f}",
                "error": f"{f6['forecast_bytes'] / truth6 - 1:+.1%}",
                "95% interval TB": f"{f6['lower'] / TB:.2f}-{f6['upper'] / TB:.2f}",
            }
        )
    if not args.no_logs:
        s = scenarios.by_name("step +40%")
        started = time.perf_counter()
        daily = _through_logs(s, args.log_lines, args.seed)
        built = time.perf_counter() - started
        rows.append(_score(f"step +40% via logs ({built:.0f} s to build)", s, daily))

    print(f"Next calendar month against its truth (seed {args.seed}; targets: within "
          f"{TARGET:.0%}, steady {TARGET_STEADY:.0%}, and covered by the 95% interval)\n")  # fmt: skip
    _print(rows, ["scenario", "month", "truth TB", "forecast TB", "error", "95% interval TB",
                  "covered", "target met", "changes found", "seconds"])  # fmt: skip
    print("\nSix months after the history (what a budget is set from)\n")
    _print(ahead, ["scenario", "month", "truth TB", "forecast TB", "error", "95% interval TB"])
    if args.seeds > 1:
        print(f"\nNext month over seeds 0..{args.seeds - 1}\n")
        _print([_spread(s, args.seeds) for s in scenarios.SCENARIOS],
               ["scenario", "max |error|", "mean error", "covered", "with a change found"])  # fmt: skip
    return 0


def _spread(s: scenarios.Scenario, seeds: int) -> dict:
    """Next-month error and coverage of one scenario over several seeds."""
    errors, covered, changed = [], 0, 0
    for seed in range(seeds):
        history, truth = scenarios.split(s, scenarios.daily_bytes(s, seed))
        f = forecast(history)
        row = _month_row(f, s.truth_month)
        errors.append(row["forecast_bytes"] / truth - 1)
        covered += row["lower"] <= truth <= row["upper"]
        changed += bool(getattr(f, "changes", ()))
    return {
        "scenario": s.name,
        "max |error|": f"{max(abs(e) for e in errors):.1%}",
        "mean error": f"{sum(errors) / seeds:+.1%}",
        "covered": f"{covered}/{seeds}",
        "with a change found": f"{changed}/{seeds}",
    }


if __name__ == "__main__":
    sys.exit(main())
