-- Heavy hitters: client networks (/24, /48) whose daily requests exceed $factor times the median
-- network's, day by day. CI loops, broken mirrors and bots show up here as their own series; they
-- are not dropped anywhere else. From rollup_client_net.
-- Parameters: $start, $end (inclusive dates), $factor.
WITH per_net AS (
    SELECT date, client_net, country, requests, bytes, distinct_paths
    FROM rollup_client_net
    WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE) AND client_net IS NOT NULL
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
