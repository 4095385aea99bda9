-- Raw scan of requests, kept as the oracle of sql/top_packages.sql (tests/test_rollups.py, make bench-queries).
-- The packages that cost the most egress: bytes, requests and distinct versions per package name.
-- Parameters: $start, $end (inclusive dates), $limit.
SELECT
    package,
    count(*) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    count(DISTINCT package_version) AS versions
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE) AND file_kind = 'package'
GROUP BY package
ORDER BY bytes DESC, package
LIMIT CAST($limit AS INTEGER)
