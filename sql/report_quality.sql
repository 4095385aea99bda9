-- Data quality for a week: the files that wrote rows in it, their lines, rejects, and the late
-- files (ingested more than a day after the last day they hold). Parameters: $start, $end.
WITH files AS (
    SELECT *
    FROM ingested_files
    WHERE list_min(dates) <= CAST($end AS DATE) AND list_max(dates) >= CAST($start AS DATE)
)
SELECT
    count(*) AS files,
    CAST(coalesce(sum(lines_total), 0) AS BIGINT) AS lines,
    CAST(coalesce(sum(rows_parsed), 0) AS BIGINT) AS parsed,
    CAST(coalesce(sum(rows_rejected), 0) AS BIGINT) AS rejected,
    round(coalesce(sum(rows_rejected) / nullif(sum(lines_total - lines_blank), 0), 0), 6) AS reject_ratio,
    count(*) FILTER (WHERE CAST(timezone('UTC', ingested_at) AS DATE) > list_max(dates) + INTERVAL 1 DAY) AS late_files
FROM files
