-- Raw requests, per client: the public daily_totals table before its k-anonymity threshold
-- (pipeline/publish): one row per UTC day and client. Parameters: $start, $end (inclusive dates).
SELECT
    date,
    client_id,
    count(*) AS requests,
    CAST(coalesce(sum(bytes), 0) AS BIGINT) AS bytes
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY ALL
