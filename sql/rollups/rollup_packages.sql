-- The rollup_packages table for one day ($day): requests by package name and version; every other
-- file kind is one row with package NULL.
SELECT
    date,
    file_kind,
    package,
    package_version,
    count(*) AS requests,
    CAST(coalesce(sum(bytes), 0) AS BIGINT) AS bytes,
    count(*) FILTER (WHERE status = 200) AS ok,
    count(*) FILTER (WHERE status = 304) AS not_modified,
    count(*) FILTER (WHERE status BETWEEN 400 AND 499) AS client_errors,
    count(*) FILTER (WHERE status >= 500) AS server_errors,
    count(*) FILTER (WHERE cache_state IS NOT NULL) AS cache_requests,
    count(*) FILTER (WHERE is_hit(cache_state)) AS hits,
    count(*) FILTER (WHERE is_origin(cache_state)) AS origin_requests,
    CAST(coalesce(sum(bytes) FILTER (WHERE is_origin(cache_state)), 0) AS BIGINT) AS origin_bytes
FROM requests
WHERE date = CAST($day AS DATE)
GROUP BY ALL
ORDER BY ALL
