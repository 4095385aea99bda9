-- Raw scan of requests, kept as the oracle of sql/traffic_by_repo.sql (tests/test_rollups.py, make bench-queries).
-- Requests and bytes per repository (main, community, testing, releases, backports).
-- Parameters: $start, $end (inclusive dates).
SELECT repo, count(*) AS requests, CAST(sum(bytes) AS BIGINT) AS bytes
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY repo
ORDER BY requests DESC, repo NULLS LAST
