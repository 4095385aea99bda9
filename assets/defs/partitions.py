"""Partitions: one per landing file, one per UTC day, one per ISO week (Monday to Sunday)."""

import dagster as dg

# Landing files, keyed by their path relative to the landing folder; the sensor adds them.
landing_files = dg.DynamicPartitionsDefinition(name="landing_files")

# Alpine's logs of interest start with the 2025 sponsor change; backfills may go further back by
# changing this date.
START = "2025-01-01"
daily = dg.DailyPartitionsDefinition(start_date=START, timezone="UTC")
# ISO weeks: day_offset=1 makes each weekly partition start on Monday 00:00 UTC.
weekly = dg.WeeklyPartitionsDefinition(start_date="2024-12-30", day_offset=1, timezone="UTC")
