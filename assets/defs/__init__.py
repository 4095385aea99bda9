"""dlcdn's Dagster definitions, one module per stage or per Dagster kind; assets/definitions.py
loads the whole folder (dg.load_from_defs_folder), so nothing is listed by hand."""
