-- Requests, bytes and unique clients (distinct_clients: docs/rollups.md) per client kind (apk,
-- curl, browser, ...). From rollup_client_kind. Parameters: $start, $end (inclusive dates).
SELECT
    client_kind,
    CAST(sum(requests) AS BIGINT) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes,
    distinct_clients(client_sketch) AS clients
FROM rollup_client_kind
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
GROUP BY client_kind
ORDER BY requests DESC, client_kind NULLS LAST
