-- The rollup_asn table for one day ($day): requests and a client sketch by network operator
-- (autonomous system number and organisation).
-- client_sketch: the smallest distinct client_id values of the cell (docs/rollups.md, "Unique clients").
WITH per_client AS (
    SELECT
        date,
        asn,
        as_org,
        client_id,
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
)
SELECT
    date,
    asn,
    as_org,
    CAST(sum(requests) AS BIGINT) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    CAST(sum(ok) AS BIGINT) AS ok,
    CAST(sum(not_modified) AS BIGINT) AS not_modified,
    CAST(sum(client_errors) AS BIGINT) AS client_errors,
    CAST(sum(server_errors) AS BIGINT) AS server_errors,
    CAST(sum(cache_requests) AS BIGINT) AS cache_requests,
    CAST(sum(hits) AS BIGINT) AS hits,
    CAST(sum(origin_requests) AS BIGINT) AS origin_requests,
    CAST(sum(origin_bytes) AS BIGINT) AS origin_bytes,
    sketch_clients(client_id) AS client_sketch
FROM per_client
GROUP BY ALL
ORDER BY asn, as_org
