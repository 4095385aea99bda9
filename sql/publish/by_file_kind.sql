-- Raw requests, per client: the public by_file_kind table before its k-anonymity threshold
-- (pipeline/publish): one row per ISO week, file kind and client.
-- Parameters: $start, $end (inclusive dates, whole ISO weeks).
SELECT
    strftime(date, '%G-W%V') AS week,
    file_kind,
    client_id,
    count(*) AS requests,
    CAST(coalesce(sum(bytes), 0) AS BIGINT) AS bytes
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY ALL
