"""Weekly decision assets: mirror placement and the egress budget, from the week's warehouse."""

import datetime as dt
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
    dest = wh.root / "decisions" / f"week={week}" / f"{name}.parquet"
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(frame, dest)
    return dest


@dg.asset(
    partitions_def=weekly,
    group_name="decisions",
    kinds={"python", "parquet"},
    deps=[weekly_traffic, rollups],
    description="Mirror site sets for k = 1..5 ranked on the four weeks of client demand ending "
    "with this ISO week (pipeline/decisions/placement.py; sites from pipeline/data/sites.yaml).",
)
def mirror_placement(
    context: dg.AssetExecutionContext, dlcdn: DlcdnResource
) -> dg.MaterializeResult:
    wh = dlcdn.open_warehouse()
    end = dt.date.fromisoformat(context.partition_key) + dt.timedelta(days=6)
    result = decisions.placement_table(wh.root, end - dt.timedelta(days=27), end, "client", 5)
    frame = result.frame()
    dest = _write_decision(wh, context.partition_key, "placement", frame)
    best = result.steps[-1]
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(dest)),
            "demand_points": result.demand_points,
            "best_sites": ", ".join(best.sites),
            "share_within_50ms": dg.MetadataValue.float(round(best.share_within_50ms, 3)),
            "preview": dg.MetadataValue.md(queries.format_frame(frame)),
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
