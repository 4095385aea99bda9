"""dlcdn library: parsing, enrichment, warehouse, SQL, decisions, report. Never imports Dagster."""
