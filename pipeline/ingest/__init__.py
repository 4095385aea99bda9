"""Read and parse: log files in (plain, gzip, zstd), typed and enriched rows out."""
