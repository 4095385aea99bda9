-- Requests and bytes per architecture with its share of all requests, for a date range.
-- Parameters: $start, $end (inclusive, YYYY-MM-DD). Requests outside the tree have arch NULL.
SELECT
    arch,
    count(*) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    round(100.0 * count(*) / sum(count(*)) OVER (), 2) AS request_share_pct
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY arch
ORDER BY requests DESC, arch
