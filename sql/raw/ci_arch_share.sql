-- Raw scan of requests, kept as the oracle of sql/ci_arch_share.sql (tests/test_rollups.py, make bench-queries).
-- CI hardware over time: per period, the request and byte share of x86, x86_64 and all other
-- architectures (of requests that name an arch). Parameters: $start, $end, $grain.
WITH per_group AS (
    SELECT
        CAST(date_trunc($grain, date) AS DATE) AS period,
        CASE WHEN arch IN ('x86', 'x86_64') THEN arch ELSE 'other' END AS arch_group,
        count(*) AS requests,
        CAST(sum(bytes) AS BIGINT) AS bytes
    FROM requests
    WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE) AND arch IS NOT NULL
    GROUP BY ALL
)
SELECT
    period,
    arch_group,
    requests,
    bytes,
    round(100.0 * requests / sum(requests) OVER (PARTITION BY period), 2) AS request_share_pct,
    round(100.0 * bytes / sum(bytes) OVER (PARTITION BY period), 2) AS byte_share_pct
FROM per_group
ORDER BY period, arch_group
