-- Branches: requests and bytes per branch (latest-stable resolved to the branch it meant on the
-- day) and whether it was supported then. From rollup_content.
-- Parameters: $start, $end (inclusive dates).
WITH per_day AS (
    SELECT date, branch_resolved, sum(requests) AS requests, sum(bytes) AS bytes
    FROM rollup_content
    WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE) AND branch_resolved IS NOT NULL
    GROUP BY ALL
)
SELECT
    branch_resolved AS branch,
    branch_status(branch_resolved, date) AS status,
    CAST(sum(requests) AS BIGINT) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes
FROM per_day
GROUP BY ALL
ORDER BY requests DESC, branch
