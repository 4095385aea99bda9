"""What the public dataset holds: its tables, their columns and meanings, and how each folds the
rows that fall below k into "other" rows (declared once: the builder, datapackage.json and the
data sheet all read these).

Each table is computed from `sql/publish/<name>.sql`, which returns one row per period, dimension
values and client (requests and bytes of that client in that cell); pipeline.publish.anonymity
turns it into published rows of at least k distinct clients.
"""

from __future__ import annotations

from dataclasses import dataclass

# The value a dimension takes in a row that gathers rows below k (never a real value: no
# country, architecture, branch or package name is written in parentheses).
OTHER = "(other)"
# The value of a dimension the warehouse does not know (NULL there: not located, a path outside
# the tree, a client kind not recognised).
UNKNOWN = "(unknown)"
# How many packages per week and architecture top_packages lists; the rest fold into the
# architecture's "other" row like the rows below k.
TOP_PACKAGES = 100

WEEK = "ISO week, Monday to Sunday UTC, as YYYY-Www (2026-W47)"
REQUESTS = "requests (log lines that parsed: every HTTP status, hits and misses alike)"
BYTES = "response body bytes sent"
CLIENTS = (
    "distinct clients (keyed hashes of the client address) in the row's cell and period, "
    "counted exactly; at least k in every row"
)
STATUS = (
    "the branch's status on the week's Monday from the Alpine branch calendar: supported, "
    f"end-of-life, unknown (not in the calendar); {UNKNOWN} when no branch; {OTHER} in a fold"
)


@dataclass(frozen=True)
class PublicTable:
    """One published table: its period column (`date` or `week`), dimensions and measures in
    column order, and its folds: the dimensions each successive "other" row keeps (the first
    fold that reaches k takes a row below k; `()` keeps none)."""

    name: str
    title: str
    description: str
    period: str
    dims: dict[str, str]
    measures: dict[str, str]
    folds: tuple[tuple[str, ...], ...] = ((),)
    # Only the `top` largest rows (by the first measure) per period and `top_within` dimensions
    # are listed; the rest fold like rows below k.
    top: int | None = None
    top_within: tuple[str, ...] = ()

    @property
    def keys(self) -> list[str]:
        """The primary key: period and dimensions."""
        return [self.period, *self.dims]

    @property
    def columns(self) -> dict[str, str]:
        """Every published column with its meaning, in order."""
        period = "UTC day" if self.period == "date" else WEEK
        return {self.period: period, **self.dims, **self.measures, "clients": CLIENTS}


def _weekly(name: str, title: str, dim: str, meaning: str) -> PublicTable:
    return PublicTable(
        name,
        title,
        f"Requests, bytes and distinct clients per ISO week and {title.lower()}.",
        "week",
        {dim: meaning},
        {"requests": REQUESTS, "bytes": BYTES},
    )


TABLES: tuple[PublicTable, ...] = (
    PublicTable(
        "daily_totals",
        "Daily totals",
        "Requests, bytes and distinct clients per UTC day, all logs together.",
        "date",
        {},
        {"requests": REQUESTS, "bytes": BYTES},
        folds=(),
    ),
    PublicTable(
        "by_place",
        "By place",
        "Requests, bytes and distinct clients per ISO week, continent and country of the client "
        "(from the GeoIP database). A country below k folds into its continent's "
        f"{OTHER} row, a continent's rows still below k into the week's {OTHER}/{OTHER} row.",
        "week",
        {
            "continent": "continent, 2-letter code (AF, AN, AS, EU, NA, OC, SA); "
            f"{UNKNOWN}: not located",
            "country": f"country, ISO 3166-1 alpha-2; {UNKNOWN}: not located",
        },
        {"requests": REQUESTS, "bytes": BYTES},
        folds=(("continent",), ()),
    ),
    _weekly(
        "by_arch",
        "Architecture",
        "arch",
        "architecture in the path (x86_64, aarch64, ...); "
        f"{UNKNOWN}: a path outside the per-architecture tree",
    ),
    PublicTable(
        "by_branch",
        "Branch",
        "Requests, bytes and distinct clients per ISO week and branch, with the branch's "
        f"status. A branch below k folds into the {OTHER} row of its status.",
        "week",
        {
            "branch": "branch: vX.Y or edge, latest-stable resolved to the branch it meant "
            f"that day; {UNKNOWN}: a path outside the tree",
            "status": STATUS,
        },
        {"requests": REQUESTS, "bytes": BYTES},
        folds=(("status",), ()),
    ),
    _weekly(
        "by_repo",
        "Repository",
        "repo",
        f"repository: main, community, testing, releases, backports; {UNKNOWN}: none",
    ),
    _weekly(
        "by_file_kind",
        "File kind",
        "file_kind",
        "apkindex, package, release, checksum, signature, release_index, netboot, "
        "cloud_image, mirrors_list, last_updated, other",
    ),
    _weekly(
        "by_client_kind",
        "Client kind",
        "client_kind",
        "apk, curl, wget, busybox-wget, buildkit, browser, crawler, ... from the User-Agent "
        f"(apk sends libfetch/2.0 whatever its version); {UNKNOWN}: none",
    ),
    PublicTable(
        "top_packages",
        "Top packages",
        f"The {TOP_PACKAGES} most requested packages (.apk downloads, by name, all versions) per "
        "ISO week and architecture. Packages below k or beyond the top fold into their "
        f"architecture's {OTHER} row, architectures still below k into the week's "
        f"{OTHER}/{OTHER} row.",
        "week",
        {
            "arch": "architecture in the path",
            "package": "package name (the .apk file name without version and release)",
        },
        {"requests": "downloads of the package's .apk files", "bytes": BYTES},
        folds=(("arch",), ()),
        top=TOP_PACKAGES,
        top_within=("arch",),
    ),
    PublicTable(
        "apkindex_checks",
        "APKINDEX checks (release adoption)",
        "Index checks per ISO week and branch: APKINDEX requests answered 200 or 304 (apk "
        "refreshes its index with If-Modified-Since, so a 304 is a live system checking in). "
        f"A branch below k folds into the {OTHER} row of its status.",
        "week",
        {
            "branch": "branch: vX.Y or edge, latest-stable resolved to the branch it meant "
            f"that day; {UNKNOWN}: none",
            "status": STATUS,
        },
        {"index_checks": "APKINDEX requests answered 200 or 304", "bytes": BYTES},
        folds=(("status",), ()),
    ),
)
BY_NAME = {t.name: t for t in TABLES}
