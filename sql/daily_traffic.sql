-- The daily_traffic asset, built from one day of raw requests (like the rollups): the day's
-- requests, bytes and clients by source, place, network-free dimensions (arch, branch, repo, file
-- kind, client kind) and CDN POP / cache state.
-- Parameter: $day (YYYY-MM-DD). `clients` is an approximate distinct count within the group: it
-- does not add up across groups (use requests for totals of clients).
SELECT
    date,
    source,
    continent,
    subregion,
    country,
    arch,
    branch_resolved,
    branch_status(branch_resolved, date) AS branch_status,
    repo,
    file_kind,
    client_kind,
    pop,
    cache_state,
    count(*) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    count(*) FILTER (WHERE status = 304) AS not_modified,
    count(*) FILTER (WHERE status BETWEEN 400 AND 499) AS client_errors,
    count(*) FILTER (WHERE status >= 500) AS server_errors,
    approx_count_distinct(client_id) AS clients
FROM requests
WHERE date = CAST($day AS DATE)
GROUP BY ALL
ORDER BY ALL
