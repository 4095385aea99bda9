-- Requests and bytes per file kind (apkindex, package, release, ...). From rollup_content.
-- Parameters: $start, $end (inclusive dates).
SELECT file_kind, CAST(sum(requests) AS BIGINT) AS requests, CAST(sum(bytes) AS BIGINT) AS bytes
FROM rollup_content
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY file_kind
ORDER BY requests DESC, file_kind NULLS LAST
