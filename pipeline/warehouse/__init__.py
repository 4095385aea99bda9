"""The warehouse: Parquet partitions and their manifest, DuckDB views, the SQL library, data checks."""
