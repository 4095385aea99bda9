-- Raw requests, per client: the public top_packages table before its k-anonymity threshold and
-- top-N cut (pipeline/publish): one row per ISO week, architecture, package name and client, over
-- .apk downloads only. Parameters: $start, $end (inclusive dates, whole ISO weeks).
SELECT
    strftime(date, '%G-W%V') AS week,
    arch,
    package,
    client_id,
    count(*) AS requests,
    CAST(coalesce(sum(bytes), 0) AS BIGINT) AS bytes
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE) AND file_kind = 'package'
GROUP BY ALL
