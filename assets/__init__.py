"""dlcdn orchestration: Dagster definitions that call the pipeline library."""
