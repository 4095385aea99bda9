-- Raw scan of requests, kept as the oracle of sql/top_release_artefacts.sql (tests/test_rollups.py, make bench-queries).
-- Release artefacts (ISOs, minirootfs, netboot, cloud images) by bytes.
-- Parameters: $start, $end (inclusive dates), $limit.
SELECT
    file_kind,
    release_flavor,
    release_version,
    arch,
    count(*) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes
FROM requests
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
    AND file_kind IN ('release', 'netboot', 'cloud_image')
GROUP BY ALL
ORDER BY bytes DESC, release_flavor, release_version, arch
LIMIT CAST($limit AS INTEGER)
