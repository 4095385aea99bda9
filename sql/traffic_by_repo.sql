-- Requests and bytes per repository (main, community, testing, releases, backports). From
-- rollup_content. Parameters: $start, $end (inclusive dates).
SELECT repo, CAST(sum(requests) AS BIGINT) AS requests, CAST(sum(bytes) AS BIGINT) AS bytes
FROM rollup_content
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY repo
ORDER BY requests DESC, repo NULLS LAST
