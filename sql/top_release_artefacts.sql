-- Release artefacts (ISOs, minirootfs, netboot, cloud images) by bytes. From rollup_releases.
-- Parameters: $start, $end (inclusive dates), $limit.
SELECT
    file_kind,
    release_flavor,
    release_version,
    arch,
    CAST(sum(requests) AS BIGINT) AS requests,
    CAST(sum(bytes) AS BIGINT) AS bytes
FROM rollup_releases
WHERE date BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
    AND file_kind IN ('release', 'netboot', 'cloud_image')
GROUP BY ALL
ORDER BY bytes DESC, release_flavor, release_version, arch
LIMIT CAST($limit AS INTEGER)
