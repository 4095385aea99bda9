-- Raw scan of requests, kept as the oracle of sql/release_adoption.sql (tests/test_rollups.py, make bench-queries).
-- Release adoption: per period, each branch's share of APKINDEX checks, and whether the branch
-- was supported at the start of the period. A 304 is a live system checking in (apk's
-- If-Modified-Since), so 304s count like 200s. Parameters: $start, $end, $grain.
WITH checks AS (
    SELECT CAST(date_trunc($grain, date) AS DATE) AS period, branch_resolved AS branch, count(*) AS index_checks
    FROM requests
    WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
        AND file_kind = 'apkindex' AND status IN (200, 304)
    GROUP BY ALL
),
with_status AS (
    SELECT period, branch, branch_status(branch, period) AS status, index_checks FROM checks
)
SELECT
    period,
    branch,
    status,
    index_checks,
    round(100.0 * index_checks / sum(index_checks) OVER (PARTITION BY period), 2) AS share_pct
FROM with_status
ORDER BY period, index_checks DESC, branch
