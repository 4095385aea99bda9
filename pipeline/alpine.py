"""Alpine facts from a request: what the path asks for, which client asked, which branch it meant.

Paths follow the mirror tree `/alpine/<branch>/<repo>/<arch>/<file>` (see the domain notes). Every
function here takes and returns `pl.Expr`, and callers apply them to *distinct* paths and user
agents: a day of dl-cdn has far fewer of those than requests.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import polars as pl

from pipeline.schema import ARCHES

_ARCH = "|".join(sorted(ARCHES, key=len, reverse=True))
_BRANCH = r"v\d+\.\d+|edge|latest-stable"

# /alpine/v3.20/main/x86_64/APKINDEX.tar.gz
TREE_PATTERN = (
    rf"^/alpine/({_BRANCH})/(?:(main|community|testing|releases|backports)/(?:({_ARCH})/)?)?"
)
# <name>-<version>-r<N>.apk, split at the last `-<digit>...-r<N>` (names may contain `-<digit>`).
PACKAGE_PATTERN = r"^(.+)-(\d[^-/]*-r\d+)\.apk$"
# alpine-<flavor>-<version>-<arch>.<ext>: alpine-minirootfs-3.20.3-x86_64.tar.gz,
# alpine-standard-3.21.0_rc1-aarch64.iso, alpine-rpi-3.20.3-armv7.img.gz, and edge snapshots
# named by date: alpine-minirootfs-20261101-x86_64.tar.gz
RELEASE_PATTERN = rf"^alpine-([a-z0-9]+(?:-[a-z]+)*)-(\d+\.\d+\.\d+(?:_rc\d+)?|\d{{8}})-({_ARCH})\."
# releases/cloud/nocloud_alpine-3.20.3-x86_64-bios-cloudinit-r0.qcow2
CLOUD_PATTERN = rf"^([a-z0-9]+)_alpine-(\d+\.\d+\.\d+)-({_ARCH})-"
NETBOOT_PATTERN = r"/netboot-(\d+\.\d+\.\d+(?:_rc\d+)?)/"


def path_facts(path: pl.Expr | None = None) -> list[pl.Expr]:
    """branch, repo, arch, file_kind, package, package_version, release_version, release_flavor."""
    path = pl.col("path") if path is None else path
    tree = path.str.extract_groups(TREE_PATTERN).struct
    branch, repo, arch = tree.field("1"), tree.field("2"), tree.field("3")
    # The last segment, percent-decoded for the character apk names use (`+` in libstdc++).
    file = path.str.extract(r"([^/]*)$").str.replace_all("%2[Bb]", "+")
    in_tree = branch.is_not_null()
    base = file.str.replace(r"\.(sha256|sha512|asc|sig)$", "")
    release = base.str.extract_groups(RELEASE_PATTERN).struct
    cloud = file.str.extract_groups(CLOUD_PATTERN).struct
    pkg = file.str.extract_groups(PACKAGE_PATTERN).struct
    netboot_version = path.str.extract(NETBOOT_PATTERN)
    is_cloud = in_tree & path.str.contains("/releases/cloud/", literal=True)
    is_pkg_repo = repo.is_in(["main", "community", "testing", "backports"])
    kind = (
        pl.when(path.is_in(["/alpine/MIRRORS.txt", "/MIRRORS.txt"]))
        .then(pl.lit("mirrors_list"))
        .when(path.is_in(["/alpine/last-updated", "/last-updated"]))
        .then(pl.lit("last_updated"))
        .when(~in_tree)
        .then(pl.lit("other"))
        .when(file == "APKINDEX.tar.gz")
        .then(pl.lit("apkindex"))
        .when(is_pkg_repo & pkg.field("1").is_not_null())
        .then(pl.lit("package"))
        .when(file == "latest-releases.yaml")
        .then(pl.lit("release_index"))
        .when(netboot_version.is_not_null())
        .then(pl.lit("netboot"))
        .when(file.str.contains(r"\.(sha256|sha512)$"))
        .then(pl.lit("checksum"))
        .when(file.str.contains(r"\.(asc|sig)$"))
        .then(pl.lit("signature"))
        .when(is_cloud)
        .then(pl.lit("cloud_image"))
        .when((repo == "releases") & release.field("1").is_not_null())
        .then(pl.lit("release"))
        .otherwise(pl.lit("other"))
    )
    is_release_file = repo == "releases"
    return [
        branch.alias("branch"),
        repo.alias("repo"),
        pl.coalesce(
            arch, pl.when(is_release_file).then(pl.coalesce(release.field("3"), cloud.field("3")))
        ).alias("arch"),
        kind.alias("file_kind"),
        pl.when(is_pkg_repo).then(pkg.field("1")).alias("package"),
        pl.when(is_pkg_repo).then(pkg.field("2")).alias("package_version"),
        pl.when(is_release_file)
        .then(pl.coalesce(release.field("2"), cloud.field("2"), netboot_version))
        .alias("release_version"),
        pl.when(is_release_file)
        .then(pl.coalesce(release.field("1"), cloud.field("1")))
        .alias("release_flavor"),
    ]


def client_kind(ua: pl.Expr | None = None) -> pl.Expr:
    """What sort of client sent the request, from its User-Agent (null when there is none).

    apk-tools 2.x and 3.x send `libfetch/2.0`, so apk's own version is not knowable from logs.
    busybox wget sends `Wget` with no version; GNU wget sends `Wget/1.21.4`.
    """
    ua = pl.col("user_agent") if ua is None else ua
    low = ua.str.to_lowercase()
    return (
        pl.when(ua.is_null())
        .then(None)
        .when(ua.str.starts_with("libfetch/") | ua.str.starts_with("apk-tools/"))
        .then(pl.lit("apk"))
        .when(
            low.str.contains(
                r"bot\b|crawler|spider|slurp|bingpreview|facebookexternalhit|nikto|sqlmap|nmap|masscan|zgrab"
            )
        )
        .then(pl.lit("crawler"))  # crawlers and vulnerability scanners
        .when(ua.str.starts_with("curl/"))
        .then(pl.lit("curl"))
        .when(ua == "Wget")
        .then(pl.lit("busybox-wget"))
        .when(ua.str.starts_with("Wget/"))
        .then(pl.lit("wget"))
        .when(ua.str.starts_with("buildkit/"))
        .then(pl.lit("buildkit"))
        .when(ua.str.starts_with("Go-http-client/"))
        .then(pl.lit("go-http"))
        .when(low.str.contains(r"^(python-requests|python-urllib|python-httpx|aiohttp|pip)/"))
        .then(pl.lit("python"))
        .when(low.str.contains(r"artifactory|nexus|squid|apt-cacher|varnish|jfrog"))
        .then(pl.lit("package-proxy"))
        .when(ua.str.starts_with("Mozilla/"))
        .then(pl.lit("browser"))
        .otherwise(pl.lit("other"))
        .alias("client_kind")
    )


@cache
def branch_calendar() -> pl.DataFrame:
    """The Alpine branch calendar shipped as package data: branch, released, eol (dates)."""
    text = resources.files("pipeline.data").joinpath("alpine_branches.csv").read_bytes()
    raw = pl.read_csv(text, infer_schema=False)
    return (
        raw.filter(pl.col("branch").str.starts_with("v"))
        .select(
            pl.col("branch"),
            pl.col("first_release_date").str.to_date("%Y-%m-%d").alias("released"),
            pl.col("main_eol_date").str.to_date("%Y-%m-%d", strict=False).alias("eol"),
            pl.col("architectures").str.split(";").alias("arches"),
        )
        .sort("released")
    )


def resolve_latest_stable(dates: pl.Series) -> pl.DataFrame:
    """For each distinct date: the branch that was newest then (what `latest-stable` pointed to)."""
    cal = branch_calendar().select("released", "branch")
    return (
        pl.DataFrame({"date": dates.unique().sort()})
        .join_asof(cal, left_on="date", right_on="released", strategy="backward")
        .select("date", pl.col("branch").alias("latest_stable"))
    )
