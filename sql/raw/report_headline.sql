-- Raw scan of requests, kept as the oracle of sql/report_headline.sql (tests/test_rollups.py, make bench-queries).
-- The report's headline numbers for a week: requests, bytes, approximate unique clients and
-- origin (cache MISS + PASS) bytes. Parameters: $start, $end (inclusive dates).
SELECT
    count(*) AS requests,
    CAST(coalesce(sum(bytes), 0) AS BIGINT) AS bytes,
    approx_count_distinct(client_id) AS clients,
    CAST(coalesce(sum(bytes) FILTER (WHERE is_origin(cache_state)), 0) AS BIGINT) AS origin_bytes
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
