-- Raw scan of requests, kept as the oracle of sql/traffic_by_file_kind.sql (tests/test_rollups.py, make bench-queries).
-- Requests and bytes per file kind (apkindex, package, release, ...).
-- Parameters: $start, $end (inclusive dates).
SELECT file_kind, count(*) AS requests, CAST(sum(bytes) AS BIGINT) AS bytes
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY file_kind
ORDER BY requests DESC, file_kind NULLS LAST
