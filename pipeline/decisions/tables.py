"""The decision tables from the warehouse: mirror placement and the egress budget.

Thin glue between the SQL library (sql/placement_*.sql, sql/egress_daily.sql) and the models
(pipeline.decisions.placement, pipeline.decisions.budget), shared by `dlcdn placement` / `dlcdn budget` and the weekly
Dagster assets.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipeline.decisions import budget, placement
from pipeline.files import atomic_write_parquet, atomic_write_text
from pipeline.settings import DEFAULT_EGRESS_BUDGET_TB
from pipeline.warehouse import queries

DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class PlacementResult:
    start: dt.date
    end: dt.date
    demand_kind: str  # client | origin
    demand_points: int
    steps: list[placement.Step]
    frontier: list[placement.Choice] = field(default_factory=list)
    budget_eur: float | None = None
    best_within_budget: placement.Choice | None = None
    site_cost: dict[str, float] = field(default_factory=dict)  # EUR/month per candidate

    def frontier_frame(self) -> pl.DataFrame:
        """The latency-versus-cost frontier, cheapest first: `sites` lists every site of the set,
        `paid_sites` those that cost money (donated mirrors make most sets long)."""
        return pl.DataFrame(
            [
                {
                    "cost_month_eur": round(p.cost_month),
                    "mean_latency_ms": round(p.mean_latency_ms, 1),
                    "share_within_50ms": round(p.share_within_50ms, 3),
                    "n_sites": len(p.sites),
                    "paid_sites": ", ".join(s for s in p.sites if self.site_cost.get(s, 1) > 0),
                    "change": p.change,
                    "gain_ms": round(p.gain_ms, 2),
                    "eur_per_ms": None if math.isnan(p.eur_per_ms) else round(p.eur_per_ms),
                    "within_budget": self.budget_eur is None or p.cost_month <= self.budget_eur,
                    "sites": ", ".join(p.sites),
                }
                for p in self.frontier
            ],
            schema_overrides={"eur_per_ms": pl.Float64},
        )

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            [
                {
                    "k": s.k,
                    "sites": ", ".join(s.sites),
                    "added": s.added,
                    "mean_latency_ms": round(s.mean_latency_ms, 1),
                    "gain_ms": round(s.gain_ms, 1),
                    "share_within_50ms": round(s.share_within_50ms, 3),
                    "cost_month_eur": round(s.cost_month),
                    "feasible": s.feasible,
                }
                for s in self.steps
            ]
        )


def data_range(wh_root: Path) -> tuple[dt.date, dt.date]:
    """First and last day with requests, from the rollups (what the decisions read)."""
    frame = queries.run(wh_root, "SELECT min(date) AS lo, max(date) AS hi FROM rollup_day")
    lo, hi = frame.row(0)
    if lo is None:
        raise ValueError(
            "the warehouse has no rollups yet: ingest logs first (`dlcdn ingest` builds them; "
            "`dlcdn rollup` catches up a warehouse ingested before they existed)"
        )
    return lo, hi


def _demand(wh_root: Path, start: dt.date, end: dt.date, demand_kind: str) -> pl.DataFrame:
    """Bytes per demand point (latitude, longitude) over [start, end], from the rollups."""
    if demand_kind not in ("client", "origin"):
        raise ValueError(f"demand {demand_kind!r}: use client or origin")
    sql = "placement_demand" if demand_kind == "client" else "placement_origin_demand"
    demand = queries.run(
        wh_root, queries.sql_file(sql), {"start": start.isoformat(), "end": end.isoformat()}
    )
    if demand.is_empty():
        raise ValueError(f"no {demand_kind} demand with a location between {start} and {end}")
    return demand


def placement_table(
    wh_root: Path,
    start: dt.date | None = None,
    end: dt.date | None = None,
    demand_kind: str = "client",
    k_max: int = 5,
    sites_path: Path | None = None,
    budget_eur: float | None = None,
    frontier: bool = False,
) -> PlacementResult:
    """Best site sets for k = 1..k_max on the demand of [start, end] (default: the last 28 days);
    with `frontier`, the latency-versus-cost frontier; with `budget_eur`, the best set within
    that monthly cost too (and the frontier)."""
    lo, hi = data_range(wh_root)
    end = end or hi
    start = start or max(lo, end - dt.timedelta(days=27))
    demand = _demand(wh_root, start, end, demand_kind)
    sites = placement.load_sites(sites_path)
    return _solve(demand, sites, start, end, demand_kind, k_max, budget_eur, frontier)


def _solve(
    demand: pl.DataFrame,
    sites: list[placement.Site],
    start: dt.date,
    end: dt.date,
    demand_kind: str,
    k_max: int,
    budget_eur: float | None,
    frontier: bool,
) -> PlacementResult:
    """`placement_table` on demand and sites already read."""
    points = demand.select("latitude", "longitude", "bytes")
    scale = DAYS_PER_MONTH / ((end - start).days + 1)
    steps = placement.place(points, sites, k_max, tb_per_month_scale=scale)
    result = PlacementResult(
        start, end, demand_kind, demand.height, steps, budget_eur=budget_eur,
        site_cost={s.name: s.cost_month for s in sites},
    )  # fmt: skip
    if frontier or budget_eur is not None:
        result.frontier.extend(placement.frontier(points, sites, tb_per_month_scale=scale))
    if budget_eur is None:
        return result
    best = placement.within_budget(points, sites, budget_eur, tb_per_month_scale=scale)
    return dataclasses.replace(result, best_within_budget=best)


WEEKLY_K_MAX = 5
WEEKLY_DEMAND_DAYS = 28


@dataclass(frozen=True)
class WeeklyPlacement:
    """The week's placement decision as stored in `<warehouse>/decisions/week=<monday>/`:
    `placement.parquet` (PlacementResult.frame, k = 1..k_max), `frontier.parquet`
    (PlacementResult.frontier_frame) and `placement.json`, the key of the inputs they answer."""

    placement: pl.DataFrame
    frontier: pl.DataFrame
    key: dict[str, object]
    reused: bool  # read from the stored decision rather than solved now

    def largest(self) -> dict[str, object]:
        """The row of the largest k solved (k_max, or fewer when there are fewer sites)."""
        return self.placement.row(-1, named=True)


def decision_dir(wh_root: Path, monday: dt.date) -> Path:
    return wh_root / "decisions" / f"week={monday.isoformat()}"


def _placement_key(
    demand: pl.DataFrame, sites: list[placement.Site], start: dt.date, end: dt.date, k_max: int
) -> dict[str, object]:
    """What the decision depends on: the demand (bytes per point), the candidate sites with
    their capacities and costs, the range and k_max. Not the traffic volume as such."""
    digest = hashlib.sha256(demand.select("latitude", "longitude", "bytes").write_csv().encode())
    digest.update(repr(sites).encode())
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "k_max": k_max,
        "demand_points": demand.height,
        "inputs_sha256": digest.hexdigest(),
    }


def _stored(folder: Path, key: dict[str, object]) -> WeeklyPlacement | None:
    try:
        if json.loads((folder / "placement.json").read_text()) != key:
            return None
        placement_rows = pl.read_parquet(folder / "placement.parquet")
        frontier_rows = pl.read_parquet(folder / "frontier.parquet")
    except (OSError, ValueError, pl.exceptions.PolarsError):
        return None  # absent, partial or from another version: solve again
    return WeeklyPlacement(placement_rows, frontier_rows, key, reused=True)


def weekly_placement(
    wh_root: Path,
    monday: dt.date,
    k_max: int = WEEKLY_K_MAX,
    sites_path: Path | None = None,
    reuse: bool = True,
) -> WeeklyPlacement:
    """The placement decision of the ISO week starting `monday`: the best sets for k = 1..k_max
    and the latency-versus-cost frontier, on the client demand of the four weeks ending with it.

    Solving takes tens of seconds whatever the traffic (it grows with demand points and
    candidate sites), so the weekly `mirror_placement` asset solves it once and stores it, and
    the weekly report reads it back. With `reuse`, a stored decision is read only when its key
    (a digest of the demand, the sites, the range and k_max) equals the current one, so a day
    re-ingested since then means a new solve, never a stale answer. Raises ValueError without
    located demand."""
    end = monday + dt.timedelta(days=6)
    start = end - dt.timedelta(days=WEEKLY_DEMAND_DAYS - 1)
    demand = _demand(wh_root, start, end, "client")
    sites = placement.load_sites(sites_path)
    key = _placement_key(demand, sites, start, end, k_max)
    folder = decision_dir(wh_root, monday)
    if reuse and (stored := _stored(folder, key)) is not None:
        return stored
    result = _solve(demand, sites, start, end, "client", k_max, None, frontier=True)
    out = WeeklyPlacement(result.frame(), result.frontier_frame(), key, reused=False)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "placement.json").unlink(missing_ok=True)  # the key goes last: no torn decision
    atomic_write_parquet(out.placement, folder / "placement.parquet")
    atomic_write_parquet(out.frontier, folder / "frontier.parquet")
    atomic_write_text(folder / "placement.json", json.dumps(key, indent=2) + "\n")
    return out


MIN_FORECAST_DAYS = 14


@dataclass(frozen=True)
class BudgetResult:
    """Edge (all bytes) and origin (cache MISS + PASS) egress against the budget. With less than
    MIN_FORECAST_DAYS of history there is no forecast: `note` says so and `monthly` has actuals."""

    monthly: pl.DataFrame  # month, edge_bytes, origin_bytes (actuals)
    edge: budget.Forecast | None
    origin: budget.Forecast | None
    note: str | None = None

    def text(self) -> str:
        if self.edge is None:
            return f"{self.note}\n\nactual egress per month:\n{queries.format_frame(self.monthly)}"
        out = ["EDGE EGRESS (all bytes served)", budget.format_report(self.edge)]
        if self.origin is not None:
            out += [
                "ORIGIN EGRESS (cache MISS + PASS: what the T1 mirrors serve)",
                budget.format_report(self.origin),
            ]
        return "\n".join(out)


def budget_table(
    wh_root: Path,
    budget_tb: float = DEFAULT_EGRESS_BUDGET_TB,
    today: dt.date | None = None,
    price_table: str | None = None,
) -> BudgetResult:
    """Monthly actuals, month-to-date projection and a 6-month forecast, edge and origin.

    `price_table` is the DLCDN_PRICE_TABLE text (None: the placeholder tiers)."""
    try:
        prices = (
            budget.parse_price_table(price_table) if price_table else budget.PRICE_TABLE_DEFAULT
        )
    except ValueError as e:
        raise ValueError(f"DLCDN_PRICE_TABLE: {e}") from None
    lo, hi = data_range(wh_root)
    daily = queries.run(
        wh_root, queries.sql_file("egress_daily"), {"start": lo.isoformat(), "end": hi.isoformat()}
    )
    monthly = (
        daily.group_by(pl.col("date").dt.truncate("1mo").alias("month"))
        .agg(pl.col("bytes").sum().alias("edge_bytes"), pl.col("origin_bytes").sum())
        .sort("month")
    )
    today = today or hi + dt.timedelta(days=1)
    days = daily.filter(pl.col("date") < today).height
    if days < MIN_FORECAST_DAYS:
        note = f"{days} day(s) of history: a forecast needs at least {MIN_FORECAST_DAYS}."
        return BudgetResult(monthly, None, None, note)
    edge = budget.forecast(
        daily.select("date", "bytes"), budget_tb=budget_tb, today=today, price_table=prices
    )
    origin = None
    if daily["requests_with_cache_state"].sum() > 0:
        origin = budget.forecast(
            daily.select("date", pl.col("origin_bytes").alias("bytes")),
            budget_tb=budget_tb,
            today=today,
            price_table=prices,
        )
    return BudgetResult(monthly, edge, origin)
