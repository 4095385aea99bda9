"""dlcdn orchestration: Dagster definitions that call the pipeline library."""

import warnings

# Partitioned asset checks and single-run backfills are preview/beta in Dagster 1.13: used on
# purpose (see assets/checks.py, assets/traffic.py); the warnings would only repeat that. Matched
# by Dagster's wording rather than by its BetaWarning and PreviewWarning classes, so that
# importing this package (as the `dlcdn` command does) does not load Dagster (~1 s).
warnings.filterwarnings("ignore", message=r".* is currently in (beta|preview)")
