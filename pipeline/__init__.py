"""dlcdn library: parsing, enrichment, warehouse, SQL, decisions, report. Never imports Dagster."""

import os

# polars allocates through a jemalloc of its own, built to hand freed pages back to the system
# half a second after they are freed. An ingest frees and allocates its batches' memory several
# times a second, so each batch faulted its pages in afresh: a sixth of the Fastly ingest's CPU
# time was the kernel's. Kept 10 s, the pages are reused instead (Fastly 37.4 -> 31.8 s; peak RSS
# the same at 5.85M lines, see README.md for 234M). jemalloc reads this when polars is first
# imported, which no module of this package does before this line runs; a value the user set wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:10000,muzzy_decay_ms:10000")
