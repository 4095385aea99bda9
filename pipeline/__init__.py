"""dlcdn library: parsing, enrichment, warehouse, SQL, decisions, report. Never imports Dagster."""

import os

# polars allocates through a jemalloc of its own, built to hand freed pages back to the system
# half a second after they are freed. An ingest frees and allocates its batches' memory several
# times a second, so each batch faulted its pages in afresh: a quarter of the Fastly ingest's CPU
# time was the kernel's. Kept 10 s, the pages are reused instead (peak RSS does not change: the
# same pages serve batch after batch). jemalloc reads this when polars is first imported, which
# no module of this package does before this line runs; a value the user set wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:10000,muzzy_decay_ms:10000")
