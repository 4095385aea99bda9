-- Requests, bytes and approximate unique clients per continent and country, for a date range.
-- Parameters: $start, $end (inclusive, YYYY-MM-DD). Unknown places stay NULL.
SELECT
    continent,
    country,
    count(*) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    approx_count_distinct(client_id) AS clients
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY continent, country
ORDER BY requests DESC, continent, country
