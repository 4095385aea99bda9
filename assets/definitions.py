"""The one place that builds dlcdn's Dagster Definitions (`dagster dev -m assets.definitions`)."""

import dagster as dg

from assets.checks import daily_traffic_quality, requests_quality, rollups_match_requests
from assets.decisions import egress_budget, mirror_placement
from assets.ingest import requests
from assets.jobs import daily_job, ingest_job, weekly_job
from assets.report import weekly_report, weekly_report_email
from assets.resources import DlcdnResource
from assets.schedules import daily_schedule, weekly_schedule
from assets.sensors import landing_sensor
from assets.traffic import daily_traffic, rollups, weekly_traffic

defs = dg.Definitions(
    assets=[
        requests,
        daily_traffic,
        rollups,
        weekly_traffic,
        mirror_placement,
        egress_budget,
        weekly_report,
        weekly_report_email,
    ],
    asset_checks=[requests_quality, daily_traffic_quality, rollups_match_requests],
    jobs=[ingest_job, daily_job, weekly_job],
    schedules=[daily_schedule, weekly_schedule],
    sensors=[landing_sensor],
    resources={"dlcdn": DlcdnResource()},
    # Steps run in the run's own process: a process per step costs ~4 s here, and the work is
    # one file or one day per run. Runs themselves go in parallel (dagster.yaml).
    executor=dg.in_process_executor,
)
