-- Raw scan of requests, kept as the oracle of sql/traffic_by_asn.sql (tests/test_rollups.py, make bench-queries).
-- Demand by network operator: requests, bytes and approximate unique clients per period and ASN.
-- Parameters: $start, $end (inclusive dates), $grain ('day' | 'week' | 'month'), $limit (top N per
-- period by bytes).
SELECT period, asn, as_org, requests, bytes, clients
FROM (
    SELECT
        CAST(date_trunc($grain, date) AS DATE) AS period,
        asn,
        as_org,
        count(*) AS requests,
        CAST(sum(bytes) AS BIGINT) AS bytes,
        approx_count_distinct(client_id) AS clients
    FROM requests
    WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
    GROUP BY ALL
)
QUALIFY row_number() OVER (PARTITION BY period ORDER BY bytes DESC, asn NULLS LAST) <= CAST($limit AS INTEGER)
ORDER BY period, bytes DESC, asn NULLS LAST
