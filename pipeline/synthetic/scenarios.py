"""Forecast scenarios with a known truth: histories whose volume follows a chosen curve.

Each scenario is a history (by default June to September 2026) and the calendar month after it,
whose total is the truth a budget forecast is scored against. A day's volume is the generator's
own (`generate.daily_lines`: weekly cycle, 15%/year growth, the release bump after each x.y.0
release, 2% noise) times the scenario's curve (a step, a change of growth rate, an outage), times
a day-to-day byte-mix noise. `daily_bytes` builds the series directly; `generate(...,
volume=scenario.curve)` writes the same curve into log files, for the path through the warehouse.

Everything here is SYNTHETIC: the shapes are the ones budget forecasts meet (a new CI fleet, a
large client leaving, a day of lost traffic), the magnitudes are chosen, not measured.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipeline.synthetic import generate as gen

# ~160 GB on an ordinary weekday, ~5 TB a month: the volume the budget issue was reported at.
BYTES_PER_DAY = 160e9
LINES = 1_000_000  # the generator's nominal volume; scaled to bytes by BYTES_PER_DAY
BYTE_NOISE = 0.04  # log-scale sd of the day-to-day byte mix (ISO downloads, cache fills)
HISTORY = (dt.date(2026, 6, 1), dt.date(2026, 9, 30))
CHANGE_DAY = dt.date(2026, 8, 15)


@dataclass(frozen=True)
class Scenario:
    """A history [first, last] whose volume is the generator's times `curve(day)`."""

    name: str
    description: str
    curve: Callable[[dt.date], float]
    first: dt.date = HISTORY[0]
    last: dt.date = HISTORY[1]

    @property
    def truth_month(self) -> dt.date:
        """The calendar month after the history: what the forecast is scored on."""
        nxt = self.last + dt.timedelta(days=1)
        return nxt.replace(day=1)

    @property
    def truth_end(self) -> dt.date:
        return self.month_end(1)

    def month_end(self, months: int) -> dt.date:
        """The last day of the `months`-th calendar month after the history."""
        m = self.truth_month
        idx = m.year * 12 + m.month - 1 + months
        return dt.date(idx // 12, idx % 12 + 1, 1) - dt.timedelta(days=1)


def _flat(_: dt.date) -> float:
    return 1.0


def _step(factor: float, day: dt.date) -> Callable[[dt.date], float]:
    return lambda d: factor if d >= day else 1.0


def _growth_change(extra_per_year: float, day: dt.date) -> Callable[[dt.date], float]:
    """From `day` on, growth `extra_per_year` (log scale) faster than before."""
    return lambda d: math.exp(extra_per_year * max((d - day).days, 0) / 365.25)


def _outage(day: dt.date, left: float) -> Callable[[dt.date], float]:
    return lambda d: left if d == day else 1.0


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("steady", "steady growth (the generator's 15%/year)", _flat),
    Scenario("step +40%", "+40% from 2026-08-15 (a new CI fleet)", _step(1.4, CHANGE_DAY)),
    Scenario("step -30%", "-30% from 2026-08-15 (a large client leaves)", _step(0.7, CHANGE_DAY)),
    Scenario(
        "growth change",
        "growth ~15%/year, then ~80%/year from 2026-07-15",
        _growth_change(0.45, dt.date(2026, 7, 15)),
    ),
    Scenario("outage mid", "one day at 5% of its traffic, 2026-08-20", _outage(dt.date(2026, 8, 20), 0.05)),
    Scenario("outage last", "one day at 5% of its traffic, the last day (2026-09-30)", _outage(HISTORY[1], 0.05)),
    Scenario(
        "release bump",
        "May 2025 to November 2025, scored on December 2025 (v3.23 released 2025-12-04)",
        _flat,
        first=dt.date(2025, 5, 1),
        last=dt.date(2025, 11, 30),
    ),
)  # fmt: skip


def by_name(name: str) -> Scenario:
    for s in SCENARIOS:
        if s.name == name:
            return s
    raise ValueError(f"no scenario {name!r}: one of {', '.join(s.name for s in SCENARIOS)}")


def daily_bytes(scenario: Scenario, seed: int = 0, months: int = 1) -> pl.DataFrame:
    """Bytes per day over the history and `months` calendar months after it (`date`, `bytes`).

    Deterministic: the same scenario and seed give the same series.
    """
    end = scenario.month_end(months)
    world = gen._build_world(seed, LINES, scenario.first, end)
    rng = np.random.default_rng([seed, scenario.first.toordinal(), 17])
    days = (end - scenario.first).days + 1
    dates = [scenario.first + dt.timedelta(days=i) for i in range(days)]
    noise = rng.normal(0.0, BYTE_NOISE, size=days)
    values = [
        gen.daily_lines(world, LINES, d, seed) / LINES * BYTES_PER_DAY * scenario.curve(d) * math.exp(e)
        for d, e in zip(dates, noise, strict=True)
    ]  # fmt: skip
    return pl.DataFrame(
        {"date": dates, "bytes": values}, schema={"date": pl.Date, "bytes": pl.Float64}
    )


def split(scenario: Scenario, daily: pl.DataFrame) -> tuple[pl.DataFrame, float]:
    """(the history to forecast from, the truth: bytes in the month after it)."""
    history = daily.filter(pl.col("date").is_between(scenario.first, scenario.last))
    month = daily.filter(pl.col("date").is_between(scenario.truth_month, scenario.truth_end))
    expected = (scenario.truth_end - scenario.truth_month).days + 1
    if month.height != expected:
        raise ValueError(f"{scenario.name}: {month.height} of {expected} truth days present")
    return history, float(month["bytes"].sum())
