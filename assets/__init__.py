"""dlcdn orchestration: Dagster definitions that call the pipeline library."""

import warnings

import dagster as dg

# Partitioned asset checks and single-run backfills are preview/beta in Dagster 1.13: used on
# purpose (see assets/checks.py, assets/traffic.py); the warnings would only repeat that.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
