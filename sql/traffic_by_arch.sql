-- CI hardware: requests and bytes per architecture with its share of all requests and bytes, for a
-- date range. From rollup_content. Parameters: $start, $end (inclusive dates). Requests outside
-- the tree have arch NULL.
SELECT
    arch,
    CAST(sum(requests) AS BIGINT) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    round(100.0 * sum(requests) / sum(sum(requests)) OVER (), 2) AS request_share_pct,
    round(100.0 * sum(bytes) / sum(sum(bytes)) OVER (), 2) AS byte_share_pct
FROM rollup_content
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY arch
ORDER BY requests DESC, arch NULLS LAST
