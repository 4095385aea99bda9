-- Release adoption: per period, each branch's share of APKINDEX checks, and whether the branch
-- was supported at the start of the period. A 304 is a live system checking in (apk's
-- If-Modified-Since), so 304s count like 200s. From rollup_content.
-- Parameters: $start, $end, $grain.
WITH checks AS (
    SELECT
        CAST(date_trunc($grain, date) AS DATE) AS period,
        branch_resolved AS branch,
        CAST(sum(ok + not_modified) AS BIGINT) AS index_checks
    FROM rollup_content
    WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE) AND file_kind = 'apkindex'
    GROUP BY ALL
    HAVING sum(ok + not_modified) > 0
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
