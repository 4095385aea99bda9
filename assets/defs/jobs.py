"""Jobs: what the sensor and the schedules launch (partitioned as their assets are)."""

import dagster as dg

from assets.defs.decisions import egress_budget, mirror_placement
from assets.defs.ingest import requests
from assets.defs.publish import public_dataset
from assets.defs.report import weekly_report, weekly_report_email
from assets.defs.traffic import daily_traffic, rollups, weekly_traffic

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets(requests),  # with its checks
    description="Parse one landing file into the warehouse (launched by the landing sensor).",
)
daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.assets(daily_traffic, rollups),
    description="Aggregate one UTC day and build its rollups (daily schedule; the sensor re-runs "
    "days late files touch).",
)
weekly_job = dg.define_asset_job(
    "weekly_job",
    selection=dg.AssetSelection.assets(
        weekly_traffic,
        mirror_placement,
        egress_budget,
        weekly_report,
        weekly_report_email,
        public_dataset,
    ),
    description="Build one ISO week, its decisions and its public dataset (Monday 06:00 UTC for "
    "the previous week).",
)
