"""dlcdn library: parsing, enrichment, warehouse, SQL, decisions, report. Never imports Dagster."""

import os

# polars allocates through a jemalloc of its own, built to hand freed pages back to the system
# half a second after they are freed. An ingest frees and allocates its batches' memory several
# times a second, so each batch would fault its pages in afresh; kept 10 s, they are reused
# instead, for the same peak memory (docs/performance.md). jemalloc reads this when polars is
# first imported, which no module of this package does before this line runs; a value the user
# set wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:10000,muzzy_decay_ms:10000")
