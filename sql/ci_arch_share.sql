-- CI hardware over time: per period, the request and byte share of x86, x86_64 and all other
-- architectures (of requests that name an arch). From rollup_content.
-- Parameters: $start, $end, $grain.
WITH per_group AS (
    SELECT
        CAST(date_trunc($grain, date) AS DATE) AS period,
        CASE WHEN arch IN ('x86', 'x86_64') THEN arch ELSE 'other' END AS arch_group,
        CAST(sum(requests) AS BIGINT) AS requests,
        CAST(sum(bytes) AS BIGINT) AS bytes
    FROM rollup_content
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
