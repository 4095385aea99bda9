"""Schedules: the day's aggregates every night, the previous ISO week every Monday 06:00 UTC."""

import dagster as dg

from assets.defs.jobs import daily_job, weekly_job

# 01:30 UTC: the day that ended 90 minutes ago (logs of late-night requests have landed by then;
# later files re-run their days through the sensor).
daily_schedule = dg.build_schedule_from_partitioned_job(
    daily_job, name="daily_schedule", hour_of_day=1, minute_of_hour=30
)
# Monday 06:00 UTC, for the ISO week that ended at Sunday midnight.
weekly_schedule = dg.build_schedule_from_partitioned_job(
    weekly_job, name="weekly_schedule", day_of_week=1, hour_of_day=6, minute_of_hour=0
)
