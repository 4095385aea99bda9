"""The decision tables from the warehouse: mirror placement and the egress budget.

Thin glue between the SQL library (sql/placement_*.sql, sql/egress_daily.sql) and the models
(pipeline.decisions.placement, pipeline.decisions.budget), shared by `dlcdn placement` / `dlcdn budget` and the weekly
Dagster assets.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipeline.decisions import budget, placement
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
    if demand_kind not in ("client", "origin"):
        raise ValueError(f"demand {demand_kind!r}: use client or origin")
    sql = "placement_demand" if demand_kind == "client" else "placement_origin_demand"
    demand = queries.run(
        wh_root, queries.sql_file(sql), {"start": start.isoformat(), "end": end.isoformat()}
    )
    if demand.is_empty():
        raise ValueError(f"no {demand_kind} demand with a location between {start} and {end}")
    days = (end - start).days + 1
    points = demand.select("latitude", "longitude", "bytes")
    sites = placement.load_sites(sites_path)
    scale = DAYS_PER_MONTH / days
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
