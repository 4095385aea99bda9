-- Raw requests, per client: the public by_arch table before its k-anonymity threshold
-- (pipeline/publish): one row per ISO week, architecture in the path and client.
-- Parameters: $start, $end (inclusive dates, whole ISO weeks).
SELECT
    strftime(date, '%G-W%V') AS week,
    arch,
    client_id,
    count(*) AS requests,
    CAST(coalesce(sum(bytes), 0) AS BIGINT) AS bytes
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY ALL
