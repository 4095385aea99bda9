-- Raw scan of requests, kept as the oracle of sql/traffic_by_branch.sql (tests/test_rollups.py, make bench-queries).
-- Branches: requests and bytes per branch (latest-stable resolved to the branch it meant on the
-- day) and whether it was supported then. Parameters: $start, $end (inclusive dates).
SELECT
    branch_resolved AS branch,
    branch_status(branch_resolved, date) AS status,
    count(*) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE) AND branch_resolved IS NOT NULL
GROUP BY ALL
ORDER BY requests DESC, branch
