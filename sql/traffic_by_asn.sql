-- Demand by network operator: requests, bytes and unique clients (distinct_clients:
-- docs/rollups.md) per period and ASN. From rollup_asn. Parameters: $start, $end (inclusive
-- dates), $grain ('day' | 'week' | 'month'), $limit (top N per period by bytes).
WITH top AS (
    SELECT *
    FROM (
        SELECT
            CAST(date_trunc($grain, date) AS DATE) AS period,
            asn,
            as_org,
            CAST(sum(requests) AS BIGINT) AS requests,
            CAST(sum(bytes) AS BIGINT) AS bytes
        FROM rollup_asn
        WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
        GROUP BY ALL
    )
    QUALIFY row_number() OVER (PARTITION BY period ORDER BY bytes DESC, asn NULLS LAST) <= CAST($limit AS INTEGER)
),
-- Sketches are merged for the top networks only.
clients AS (
    SELECT t.period, t.asn, t.as_org, distinct_clients(r.client_sketch) AS clients
    FROM top t JOIN rollup_asn r
        ON CAST(date_trunc($grain, r.date) AS DATE) = t.period
        AND r.asn IS NOT DISTINCT FROM t.asn AND r.as_org IS NOT DISTINCT FROM t.as_org
    WHERE r.date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
    GROUP BY ALL
)
SELECT t.period, t.asn, t.as_org, t.requests, t.bytes, c.clients
FROM top t JOIN clients c
    ON c.period = t.period AND c.asn IS NOT DISTINCT FROM t.asn AND c.as_org IS NOT DISTINCT FROM t.as_org
ORDER BY t.period, t.bytes DESC, t.asn NULLS LAST
