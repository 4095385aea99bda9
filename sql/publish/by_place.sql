-- Raw requests, per client: the public by_place table before its k-anonymity threshold
-- (pipeline/publish): one row per ISO week, continent, country and client.
-- Parameters: $start, $end (inclusive dates, whole ISO weeks).
SELECT
    strftime(date, '%G-W%V') AS week,
    continent,
    country,
    client_id,
    count(*) AS requests,
    CAST(coalesce(sum(bytes), 0) AS BIGINT) AS bytes
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY ALL
