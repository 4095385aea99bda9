"""Egress budget forecast: backtest error on a generated year, weekly cycle, month to date,
intervals, budget flags and price tiers, short and gappy histories, and real synthetic logs."""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipeline.decisions.budget import (
    PRICE_TABLE_DEFAULT,
    TB,
    cost_eur,
    forecast,
    format_report,
    parse_price_table,
    release_dates,
)
from pipeline.synthetic import generate as gen
from pipeline.synthetic import scenarios

YEAR_START = dt.date(2025, 11, 1)
# Scales the generator's line counts to bytes: ~23 TB on an ordinary weekday, ~700 TB a month,
# so that the forecast crosses the default 800 TB budget within its six months.
BYTES_PER_LINE = 23e12 / 1_000_000


def _frame(dates: list[dt.date], values) -> pl.DataFrame:
    return pl.DataFrame(
        {"date": dates, "bytes": [None if v is None else int(v) for v in values]},
        schema={"date": pl.Date, "bytes": pl.Int64},
    )


@pytest.fixture(scope="module")
def generated_year() -> pl.DataFrame:
    """A year of daily bytes from the generator's own volume model (trend, week, release bump),
    with 3% extra noise for the byte mix."""
    last = YEAR_START + dt.timedelta(days=364)
    world = gen._build_world(0, 1_000_000, YEAR_START, last)
    rng = np.random.default_rng(7)
    dates = [YEAR_START + dt.timedelta(days=i) for i in range(365)]
    values = [
        gen.daily_lines(world, 1_000_000, d, 0) * BYTES_PER_LINE * (1 + rng.normal(0, 0.03))
        for d in dates
    ]
    return _frame(dates, values)


def test_generated_year_backtest_mape_under_10_percent(generated_year: pl.DataFrame) -> None:
    # The done-when: backtest MAPE on a generated year is printed and < 10% monthly.
    f = forecast(generated_year)
    print(
        f"\ngenerated year: backtest MAPE daily {f.backtest_mape_daily:.2%}, "
        f"monthly {f.backtest_mape_monthly:.2%}\n{f.method}"
    )
    print(format_report(f))
    assert f.backtest_mape_monthly < 0.10
    assert f.backtest_mape_daily < 0.10
    assert "release bump" in f.method and "rolling origins" in f.method
    assert f.daily.filter(pl.col("kind") == "forecast").height == 183


def test_intervals_cover_held_out_days(generated_year: pl.DataFrame) -> None:
    # 95% daily intervals: a loose bound, the held-out weeks include the December release bump.
    train, test = generated_year.head(365 - 56), generated_year.tail(56)
    f = forecast(train, horizon_days=56)
    joined = f.daily.filter(pl.col("kind") == "forecast").join(
        test.rename({"bytes": "truth"}), on="date"
    )
    inside = joined.select(
        ((pl.col("truth") >= pl.col("lower")) & (pl.col("truth") <= pl.col("upper"))).mean()
    ).item()
    print(f"\nheld-out coverage of 95% daily intervals: {inside:.0%}")
    assert joined.height == 56
    assert inside >= 0.8
    # Monthly totals of the held-out months land inside their intervals too.
    truth = generated_year.group_by(pl.col("date").dt.truncate("1mo").alias("month")).agg(
        pl.col("bytes").sum().alias("truth")
    )
    months = f.monthly.join(truth, on="month").filter(pl.col("month") >= dt.date(2026, 9, 1))
    assert months.height == 2
    assert (months["truth"] >= months["lower"] * 0.98).all()
    assert (months["truth"] <= months["upper"] * 1.02).all()


def test_weekday_ratios_recovered() -> None:
    # A known weekly cycle with a little noise: the forecast's weekday ratios match it.
    week = [1.0, 1.1, 1.1, 1.05, 0.95, 0.6, 0.5]
    rng = np.random.default_rng(3)
    dates = [dt.date(2026, 1, 5) + dt.timedelta(days=i) for i in range(140)]  # a Monday
    values = [20e12 * week[d.weekday()] * math.exp(rng.normal(0, 0.02)) for d in dates]
    f = forecast(_frame(dates, values), horizon_days=28)
    fc = f.daily.filter(pl.col("kind") == "forecast")
    by_day = fc.group_by(pl.col("date").dt.weekday()).agg(pl.col("bytes").mean()).sort("date")
    ratios = by_day["bytes"].to_numpy() / by_day["bytes"][0]
    np.testing.assert_allclose(ratios, np.array(week) / week[0], rtol=0.02)


def test_month_to_date_projection() -> None:
    # Flat weekday-cycled series: the projection is what was seen plus the known rest.
    week = [1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.8]
    dates = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(120)]
    values = [10e12 * week[d.weekday()] for d in dates]
    today = dt.date(2026, 4, 16)  # April 1..15 are complete
    f = forecast(_frame(dates, values), horizon_days=60, budget_tb=200.0, today=today)
    april = [dt.date(2026, 4, d) for d in range(1, 31)]
    seen = sum(10e12 * week[d.weekday()] for d in april[:15])
    total = sum(10e12 * week[d.weekday()] for d in april)
    m = f.mtd
    assert m["month"] == dt.date(2026, 4, 1)
    assert (m["days_seen"], m["days_in_month"]) == (15, 30)
    assert m["actual_bytes"] == pytest.approx(seen)
    assert m["projected_bytes"] == pytest.approx(total, rel=0.01)
    assert m["projected_share_of_budget"] == pytest.approx(total / 200e12, rel=0.01)
    assert f.daily.filter(pl.col("kind") == "actual")["date"].max() == dt.date(2026, 4, 15)


def test_budget_flags_and_costs(generated_year: pl.DataFrame) -> None:
    f = forecast(generated_year, budget_tb=750.0)
    m = f.monthly
    assert m.columns == ["month", "actual_bytes", "forecast_bytes", "lower", "upper",
                         "budget_bytes", "over_budget", "cost_eur"]  # fmt: skip
    assert (m["budget_bytes"] == 750 * TB).all()
    assert m["over_budget"].to_list() == (m["forecast_bytes"] > 750 * TB).to_list()
    assert m["over_budget"].any() and not m["over_budget"].all()
    expected = [cost_eur(b / TB, PRICE_TABLE_DEFAULT) for b in m["forecast_bytes"]]
    np.testing.assert_allclose(m["cost_eur"].to_numpy(), expected)
    # Complete past months: actual = total, no interval.
    past = m.filter(pl.col("month") < dt.date(2026, 11, 1))
    assert past.height == 12
    assert (past["actual_bytes"] == past["forecast_bytes"]).all()
    assert (past["lower"] == past["upper"]).all()
    future = m.filter(pl.col("month") >= dt.date(2026, 11, 1))
    assert future["actual_bytes"].null_count() == future.height
    assert ((future["lower"] < future["forecast_bytes"]) & (future["forecast_bytes"] < future["upper"])).all()  # fmt: skip
    assert "OVER" in format_report(f)


@pytest.mark.parametrize(
    ("tb", "eur"),
    [
        # Graduated tiers: each slice at its own rate, exact on the boundaries.
        (0.0, 0.0),
        (10.0, 10 * 80.0),
        (50.0, 10 * 80.0 + 40 * 60.0),
        (150.0, 10 * 80.0 + 40 * 60.0 + 100 * 45.0),
        (500.0, 10 * 80.0 + 40 * 60.0 + 100 * 45.0 + 350 * 30.0),
        (800.0, 10 * 80.0 + 40 * 60.0 + 100 * 45.0 + 350 * 30.0 + 300 * 20.0),
    ],
)
def test_cost_tiers(tb: float, eur: float) -> None:
    assert cost_eur(tb, PRICE_TABLE_DEFAULT) == eur


def test_cost_table_edge_cases() -> None:
    # A table whose last tier is finite: volume beyond it keeps the last rate.
    assert cost_eur(15.0, [(10.0, 2.0)]) == 30.0
    with pytest.raises(ValueError, match="increasing"):
        cost_eur(1.0, [(10.0, 2.0), (5.0, 1.0)])
    with pytest.raises(ValueError, match="negative"):
        cost_eur(-1.0, PRICE_TABLE_DEFAULT)


def test_price_table_setting() -> None:
    # The setting's text form round-trips the default table; bad tiers name themselves.
    assert parse_price_table("10:80, 50:60,150:45,500:30,inf:20") == PRICE_TABLE_DEFAULT
    with pytest.raises(ValueError, match="'50'"):
        parse_price_table("10:80,50")
    with pytest.raises(ValueError, match="increasing"):
        parse_price_table("50:60,10:80")


def test_too_short_history_is_a_clear_error() -> None:
    dates = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(20)]
    values = [1e12] * 13 + [None] * 7  # 13 days with bytes, the rest missing
    with pytest.raises(ValueError, match="at least 14 days"):
        forecast(_frame(dates, values))


def test_short_history_fits_level_and_weekday_only() -> None:
    # Under five weeks: no trend (a slope over a few weeks is noise) and no release bump.
    dates = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(28)]
    f = forecast(_frame(dates, [1e12 * (1 + 0.1 * (d.weekday() < 5)) for d in dates]))
    assert "level + weekday only" in f.method
    assert not math.isnan(f.backtest_mape_daily) and f.backtest_mape_daily < 0.01
    f14 = forecast(_frame(dates[:14], [1e12] * 14))
    assert math.isnan(f14.backtest_mape_daily) and "no backtest" in f14.method
    assert "n/a" in format_report(f14)


def test_missing_days_are_missing_not_zero(generated_year: pl.DataFrame) -> None:
    # Drop 30 days, null one and zero another: the months with gaps are filled by the model.
    rng = np.random.default_rng(11)
    drop = set(rng.choice(300, size=30, replace=False).tolist())
    gappy = generated_year.with_row_index().filter(~pl.col("index").is_in(list(drop)))
    gappy = gappy.with_columns(
        pl.when(pl.col("index") == 301).then(None)
        .when(pl.col("index") == 302).then(0)
        .otherwise(pl.col("bytes")).alias("bytes")
    ).drop("index")  # fmt: skip
    f = forecast(gappy)
    assert f.daily.filter(pl.col("kind") == "actual").height == 365 - 30 - 2
    truth = generated_year.group_by(pl.col("date").dt.truncate("1mo").alias("month")).agg(
        pl.col("bytes").sum().alias("truth")
    )
    joined = f.monthly.join(truth, on="month")
    np.testing.assert_allclose(joined["forecast_bytes"], joined["truth"], rtol=0.03)
    assert (joined["actual_bytes"] <= joined["truth"]).all()


def test_release_calendar_and_assumed_releases() -> None:
    dates = release_dates(dt.date(2028, 1, 31))
    assert dt.date(2025, 12, 4) in dates and dt.date(2026, 6, 9) in dates
    assert min(dates).year == 2020
    future = [d for d in dates if d > dt.date(2026, 6, 9)]
    # Assumed: autumn 2026, spring and autumn 2027, in the months Alpine actually releases in.
    assert [(d.year, d.month in (5, 6, 11, 12)) for d in future] == [
        (2026, True), (2027, True), (2027, True)
    ]  # fmt: skip


# combined: ... "GET /path HTTP/1.1" 200 102537 "-" "libfetch/2.0"
_STATUS_BYTES = re.compile(rb'" \d{3} (\d+|-) "')


def _bytes_per_day(paths: list[Path]) -> pl.DataFrame:
    """Sums the body bytes of each generated file (one file per day, named by its date)."""
    rows = []
    for path in paths:
        day = dt.date.fromisoformat(path.name.removesuffix(".log")[-10:])
        total = 0
        for line in path.read_bytes().splitlines():
            m = _STATUS_BYTES.search(line)
            if m and m.group(1) != b"-":  # malformed lines carry no size
                total += int(m.group(1))
        rows.append((day, total))
    return pl.DataFrame(rows, schema={"date": pl.Date, "bytes": pl.Int64}, orient="row")


def test_forecast_on_generated_logs(tmp_path: Path) -> None:
    # Sixty days of real synthetic logs around the May 2026 release, counted per day.
    paths = gen.generate(tmp_path, dt.date(2026, 4, 20), 60, lines_per_day=2000)
    daily = _bytes_per_day(paths)
    assert daily.height == 60 and (daily["bytes"] > 0).all()
    f = forecast(daily, horizon_days=90)
    print(f"\n60 days of generated logs: {f.method}\nMAPE daily {f.backtest_mape_daily:.1%}, "
          f"monthly {f.backtest_mape_monthly:.1%}")  # fmt: skip
    assert f.daily.height == 150
    assert f.monthly["forecast_bytes"].is_finite().all()
    assert math.isfinite(f.backtest_mape_daily)
    assert "Backtest MAPE" in format_report(f)


# --- Scenarios with a known truth (pipeline/synthetic/scenarios.py; make bench-forecast) ---


def _next_month(name: str) -> tuple[object, float, dict]:
    s = scenarios.by_name(name)
    history, truth = scenarios.split(s, scenarios.daily_bytes(s, seed=0))
    f = forecast(history)
    return f, truth, f.monthly.filter(pl.col("month") == s.truth_month).row(0, named=True)


@pytest.mark.parametrize(("name", "shift"), [("step +40%", 0.40), ("step -30%", -0.30)])
def test_step_moves_the_level_not_the_growth_rate(name: str, shift: float) -> None:
    # rule: a step in the history is found as a level shift on its day, and next month's total is
    # within 10% of the truth and inside the 95% interval
    f, truth, row = _next_month(name)
    assert abs(row["forecast_bytes"] / truth - 1) <= 0.10
    assert row["lower"] <= truth <= row["upper"]
    [change] = f.changes
    assert abs((change.day - scenarios.CHANGE_DAY).days) <= 3
    assert change.level_pct == pytest.approx(shift, abs=0.06) and change.growth_after is None
    sign = "+" if shift > 0 else "-"
    assert f"level shift {sign}" in format_report(f) and str(change.day) in format_report(f)
    # six months on, the forecast stays near the run rate instead of extrapolating the step
    s = scenarios.by_name(name)
    later = scenarios.daily_bytes(s, seed=0, months=6)
    march = dt.date(2027, 3, 1)
    truth6 = later.filter(pl.col("date").dt.truncate("1mo") == march)["bytes"].sum()
    fc6 = f.monthly.filter(pl.col("month") == march)["forecast_bytes"].item()
    assert abs(fc6 / truth6 - 1) <= 0.15


def test_steady_growth_finds_no_change() -> None:
    # rule: no change invented in a steady history; next month within 5%
    f, truth, row = _next_month("steady")
    assert f.changes == () and f.outliers == ()
    assert abs(row["forecast_bytes"] / truth - 1) <= 0.05
    assert row["lower"] <= truth <= row["upper"]
    assert "Changes found: none" in format_report(f)


def test_outage_on_the_last_day_is_set_aside() -> None:
    # rule: a day at 5% of its traffic is reported as an outlier, not fitted as a level shift
    f, truth, row = _next_month("outage last")
    assert [o.day for o in f.outliers] == [dt.date(2026, 9, 30)]
    assert f.outliers[0].off_pct < -0.9
    assert abs(row["forecast_bytes"] / truth - 1) <= 0.10
    assert "2026-09-30 (-9" in format_report(f)
