-- Raw requests, per client: the public by_branch table before its k-anonymity threshold
-- (pipeline/publish): one row per ISO week, branch (latest-stable resolved to the branch it meant
-- on the day), its status on the week's Monday, and client.
-- Parameters: $start, $end (inclusive dates, whole ISO weeks).
WITH per_client AS (
    SELECT
        CAST(date_trunc('week', date) AS DATE) AS monday,
        branch_resolved AS branch,
        client_id,
        count(*) AS requests,
        CAST(coalesce(sum(bytes), 0) AS BIGINT) AS bytes
    FROM requests
    WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
    GROUP BY ALL
)
SELECT
    strftime(monday, '%G-W%V') AS week,
    branch,
    branch_status(branch, monday) AS status,
    client_id,
    requests,
    bytes
FROM per_client
