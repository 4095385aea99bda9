"""Weekly decision assets: mirror placement and the egress budget, from the week's warehouse."""

import datetime as dt
import time
from pathlib import Path

import dagster as dg
import polars as pl

from assets.defs.partitions import weekly
from assets.defs.traffic import rollups, weekly_traffic
from assets.resources import DlcdnResource
from pipeline.decisions import tables as decisions
from pipeline.files import atomic_write_parquet
from pipeline.warehouse import queries
from pipeline.warehouse.store import Warehouse


def _write_decision(wh: Warehouse, week: str, name: str, frame: pl.DataFrame) -> Path:
    """Replaces `<warehouse>/decisions/week=<week>/<name>.parquet` atomically; returns its path."""
    dest = decisions.decision_dir(wh.root, dt.date.fromisoformat(week)) / f"{name}.parquet"
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(frame, dest)
    return dest


@dg.asset(
    partitions_def=weekly,
    group_name="decisions",
    kinds={"python", "parquet"},
    deps=[weekly_traffic, rollups],
    description="Mirror site sets for k = 1..5 and the latency-versus-cost frontier, on the four "
    "weeks of client demand ending with this ISO week (pipeline/decisions/placement.py; sites from "
    "pipeline/data/sites.yaml). Stored with the key of its inputs; the weekly report reads it.",
)
def mirror_placement(
    context: dg.AssetExecutionContext, dlcdn: DlcdnResource
) -> dg.MaterializeResult:
    wh = dlcdn.open_warehouse()
    monday = dt.date.fromisoformat(context.partition_key)
    started = time.perf_counter()
    decision = decisions.weekly_placement(wh.root, monday, reuse=False)
    best = decision.largest()
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(decisions.decision_dir(wh.root, monday))),
            "demand_points": decision.key["demand_points"],
            "best_sites": best["sites"],
            "share_within_50ms": dg.MetadataValue.float(best["share_within_50ms"]),
            "frontier_points": decision.frontier.height,
            "solve_s": dg.MetadataValue.float(round(time.perf_counter() - started, 1)),
            "preview": dg.MetadataValue.md(queries.format_frame(decision.placement)),
        }
    )


@dg.asset(
    partitions_def=weekly,
    group_name="decisions",
    kinds={"python", "parquet"},
    deps=[weekly_traffic, rollups],
    description="Egress per month (edge and origin): actuals, month-to-date projection and a "
    "6-month forecast against DLCDN_EGRESS_BUDGET_TB, with the backtest MAPE (pipeline/decisions/budget.py).",
)
def egress_budget(context: dg.AssetExecutionContext, dlcdn: DlcdnResource) -> dg.MaterializeResult:
    wh = dlcdn.open_warehouse()
    today = dt.date.fromisoformat(context.partition_key) + dt.timedelta(days=7)
    s = dlcdn.settings()
    result = decisions.budget_table(
        wh.root, s.egress_budget_tb, today=today, price_table=s.price_table
    )
    monthly = result.edge.monthly if result.edge else result.monthly
    dest = _write_decision(wh, context.partition_key, "budget_monthly", monthly)
    metadata: dict[str, object] = {
        "path": dg.MetadataValue.path(str(dest)),
        "preview": dg.MetadataValue.md("```\n" + result.text() + "\n```"),
    }
    if result.edge is not None:
        metadata |= {
            "method": result.edge.method,
            "changes": "; ".join(c.describe() for c in result.edge.changes) or "none",
            "backtest_mape_monthly": dg.MetadataValue.float(
                round(result.edge.backtest_mape_monthly, 4)
            ),
            "backtest_mape_daily": dg.MetadataValue.float(
                round(result.edge.backtest_mape_daily, 4)
            ),
        }
    else:
        context.log.warning(str(result.note))
    return dg.MaterializeResult(metadata=metadata)
