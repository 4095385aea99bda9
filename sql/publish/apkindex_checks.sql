-- Raw requests, per client: the public apkindex_checks table (release adoption) before its
-- k-anonymity threshold (pipeline/publish): one row per ISO week, branch, its status on the
-- week's Monday, and client. An index check is an APKINDEX request answered 200 or 304 (apk's
-- If-Modified-Since: a live system checking in), as in sql/release_adoption.sql.
-- Parameters: $start, $end (inclusive dates, whole ISO weeks).
WITH per_client AS (
    SELECT
        CAST(date_trunc('week', date) AS DATE) AS monday,
        branch_resolved AS branch,
        client_id,
        count(*) AS index_checks,
        CAST(coalesce(sum(bytes), 0) AS BIGINT) AS bytes
    FROM requests
    WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
        AND file_kind = 'apkindex' AND status IN (200, 304)
    GROUP BY ALL
)
SELECT
    strftime(monday, '%G-W%V') AS week,
    branch,
    branch_status(branch, monday) AS status,
    client_id,
    index_checks,
    bytes
FROM per_client
