-- The weekly_traffic asset: an ISO week (Monday to Sunday) from daily_traffic, by the dimensions
-- the weekly report breaks down. Parameters: $week_start (a Monday, YYYY-MM-DD).
SELECT
    CAST($week_start AS DATE) AS week_start,
    source,
    continent,
    country,
    arch,
    branch_resolved,
    branch_status,
    repo,
    file_kind,
    client_kind,
    CAST(sum(requests) AS BIGINT) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    CAST(sum(not_modified) AS BIGINT) AS not_modified
FROM daily_traffic
WHERE date BETWEEN CAST($week_start AS DATE) AND CAST($week_start AS DATE) + INTERVAL 6 DAY
GROUP BY ALL
ORDER BY ALL
