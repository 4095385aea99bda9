-- Raw scan of requests, kept as the oracle of sql/heavy_hitters.sql (tests/test_rollups.py, make bench-queries).
-- Heavy hitters: client networks (/24, /48) whose daily requests exceed $factor times the median
-- network's, day by day. CI loops, broken mirrors and bots show up here as their own series; they
-- are not dropped anywhere else. Parameters: $start, $end (inclusive dates), $factor.
WITH per_net AS (
    SELECT date, client_net, country, count(*) AS requests, CAST(sum(bytes) AS BIGINT) AS bytes,
           count(DISTINCT path) AS distinct_paths
    FROM requests
    WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE) AND client_net IS NOT NULL
    GROUP BY date, client_net, country
),
day AS (
    SELECT date, median(requests) AS median_requests, sum(requests) AS all_requests
    FROM per_net GROUP BY date
)
SELECT
    p.date,
    p.client_net,
    p.country,
    p.requests,
    p.bytes,
    p.distinct_paths,
    round(p.requests / d.median_requests, 1) AS times_median,
    round(100.0 * p.requests / d.all_requests, 2) AS share_pct
FROM per_net p JOIN day d USING (date)
WHERE p.requests > CAST($factor AS DOUBLE) * d.median_requests
ORDER BY p.date, p.requests DESC, p.client_net
