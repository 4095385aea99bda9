-- The packages that cost the most egress: bytes, requests and distinct versions per package name.
-- From rollup_packages. Parameters: $start, $end (inclusive dates), $limit.
SELECT
    package,
    CAST(sum(requests) AS BIGINT) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    count(DISTINCT package_version) AS versions
FROM rollup_packages
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE) AND file_kind = 'package'
GROUP BY package
ORDER BY bytes DESC, package
LIMIT CAST($limit AS INTEGER)
