"""Typed fields -> warehouse rows: path facts, client kind, client identity and place.

Enrichment runs on distinct values only: clients, URLs and user agents repeat all day, so each
distinct value is looked up once per file (`FactCache`). Reject rows get their file and have the
IP addresses in their text masked. `open_enrichment` opens what this needs from the settings.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import polars as pl

from pipeline import alpine
from pipeline.geo import addresses, privacy
from pipeline.geo.geoip import GEO_COLUMNS, GeoIP
from pipeline.ingest.formats import LogFormat
from pipeline.ingest.parse import Fields
from pipeline.ingest.reader import MAX_RAW_CHARS
from pipeline.schema import RAW_IP_COLUMN, REQUESTS
from pipeline.settings import Settings

# One row per distinct client: what `_new_clients` computes (the file's client FactCache rows).
CLIENT_SCHEMA = pl.Schema(
    [
        ("client", pl.String),
        *((c, REQUESTS[c]) for c in ("client_id", "client_net", *GEO_COLUMNS)),
        RAW_IP_COLUMN,
    ]
)


@runtime_checkable
class Geolocator(Protocol):
    """What enrichment needs of a GeoIP database (`pipeline.geo.geoip.GeoIP` is one): for
    distinct, normalised addresses, one row each in order, `client` plus the geo columns."""

    def lookup(self, ips: Sequence[str] | pl.Series) -> pl.DataFrame: ...


class FactCache:
    """Fact rows keyed by one text column: computed once per distinct value, attached by position.

    Each value gets an integer code from a polars Categorical whose categories belong to this
    cache (the cast hashes each value once, in native code); `index[code]` is the row of the
    value's facts. A batch costs that cast, an array lookup and a gather of fact rows, and the
    compute function runs on values never seen before only. Past `max_rows` the cache starts
    over (new categories: polars frees the old mapping with the last series using it), so memory
    stays bounded however many distinct values a file has.
    """

    def __init__(self, key: str, max_rows: int = 1_000_000) -> None:
        self.key = key
        self.max_rows = max_rows
        self.lock = threading.Lock()
        self._gen = _Generation()

    @property
    def table(self) -> pl.DataFrame | None:
        """Every cached row, the key included (for inspection)."""
        levels = self._gen.levels()
        return None if levels is None else pl.concat(t for t in levels if t is not None)[1:]

    def attach(
        self, values: pl.Series, compute: Callable[[pl.Series], pl.DataFrame]
    ) -> pl.DataFrame:
        """One fact row per value of `values`, in order: the key column as computed and the
        facts; every column null where the value is null.

        `compute` gets distinct non-null values and returns one row for each, in order.
        """
        gen = self._gen
        codes = values.cast(gen.dtype).to_physical()
        with self.lock:
            pos, levels = gen.positions(codes), gen.levels()
        missing = pos < 0
        if missing.any() or levels is None:
            new = values.filter(pl.Series(missing)).unique()
            rows = compute(new.rename(self.key))
            with self.lock:
                gen.add(new.cast(gen.dtype).to_physical().to_numpy(), rows)
                pos, levels = gen.positions(codes), gen.levels()
                if gen.height > self.max_rows and gen is self._gen:
                    self._gen = _Generation()
        assert levels is not None
        return _gather(levels, pos)


def _gather(levels: tuple[pl.DataFrame, pl.DataFrame | None], pos: np.ndarray) -> pl.DataFrame:
    """Rows `pos` of the two levels taken as one frame (`main`'s rows first).

    polars gathers from a frame of two chunks some twenty times slower than from one, so the
    rows are gathered from `main`, and the few that are in `recent` written over them.
    """
    main, recent = levels
    in_recent = pos >= main.height
    if recent is None or not in_recent.any():
        return main[pl.Series(pos)]
    out = main[pl.Series(np.where(in_recent, 0, pos))]
    where = np.flatnonzero(in_recent)
    late = recent[pl.Series(pos[where] - main.height)]
    at = pl.Series(where)
    return pl.DataFrame([out[c].scatter(at, late[c]) for c in out.columns])


class _Generation:
    """One start of a FactCache: its categories, the code -> row index, and the fact rows.

    The rows live in `main` (row 0 all null: what a null value gets) and `recent`, the rows
    added since `main` was last rebuilt, each in one chunk: `recent` joins `main` once it
    reaches a quarter of it, so a row is copied a few times over a file rather than at every
    batch that brings new values. `index` holds -1 for codes whose facts are not there yet.
    Rows are only ever appended, so a row number stays valid.
    """

    _MERGE_FRACTION = 4

    def __init__(self) -> None:
        self.dtype = pl.Categorical(pl.Categories.random())
        # polars keeps a mapping only while some series uses it.
        self.keepalive = pl.Series([], dtype=self.dtype)
        self.index = np.full(1024, -1, dtype=np.int64)
        self.main: pl.DataFrame | None = None
        self.recent: pl.DataFrame | None = None
        self.height = 0  # fact rows, the null row not counted

    def levels(self) -> tuple[pl.DataFrame, pl.DataFrame | None] | None:
        return None if self.main is None else (self.main, self.recent)

    def positions(self, codes: pl.Series) -> np.ndarray:
        """The fact row of every code (0 for a null, -1 where the facts are not known yet)."""
        top = codes.max()
        if top is not None and int(top) >= len(self.index):  # type: ignore[arg-type]
            size = max(2 * len(self.index), int(top) + 1)  # type: ignore[arg-type]
            grown = np.full(size, -1, dtype=np.int64)
            grown[: len(self.index)] = self.index
            self.index = grown
        nulls = codes.is_null().to_numpy()
        pos = self.index[codes.fill_null(0).to_numpy()]
        pos[nulls] = 0
        return pos

    def add(self, codes: np.ndarray, rows: pl.DataFrame) -> None:
        """Appends the rows of the codes that are still missing (another batch may have added
        some meanwhile)."""
        self.positions(pl.Series(codes, dtype=pl.UInt32))  # grows the index to fit the codes
        if self.main is None:
            self.main = rows.clear(1)
        still = self.index[codes] < 0
        if not still.any():
            return
        rows = rows.filter(pl.Series(still))
        # Text taken from a batch is a view into that batch's buffers: kept as it is, each cached
        # row would keep its whole batch alive. Own copies cost little (new values only).
        rows = rows.with_columns(pl.col(pl.String) + "")
        recent = rows if self.recent is None else pl.concat([self.recent, rows]).rechunk()
        if recent.height * self._MERGE_FRACTION > self.main.height:
            self.main, self.recent = pl.concat([self.main, recent]).rechunk(), None
        else:
            self.recent = recent
        self.index[codes[still]] = np.arange(self.height + 1, self.height + 1 + rows.height)
        self.height += rows.height


@dataclass
class Context:
    """Everything a batch needs to know about its file and the enrichment settings."""

    file_id: str
    source: str
    fmt: LogFormat
    ip_key: bytes
    geo: Geolocator | None = None
    keep_raw_ip: bool = False
    # Clients, URLs and user agents repeat all day: each distinct value is enriched once per file
    # (a GeoIP lookup and a hash per client, a dozen regexes per URL), in whichever batch first
    # has it. The caches are bounded (see FactCache), so memory does not grow with the file.
    clients: FactCache = field(default_factory=lambda: FactCache("client", 400_000))
    urls: FactCache = field(default_factory=lambda: FactCache("url", 200_000))
    user_agents: FactCache = field(default_factory=lambda: FactCache("user_agent", 100_000))


@dataclass
class Rows:
    """A batch's warehouse rows."""

    requests: pl.DataFrame
    rejects: pl.DataFrame  # file_id, line_no, raw, reason (date: assigned per file, see ingest)
    blank: int


def enrich(fields: Fields, ctx: Context) -> Rows:
    """The enriched rows of a parsed batch, and its rejects with the file and masked text."""
    return Rows(
        requests=_requests(fields.good, ctx),
        rejects=fields.rejects.sort("line_no").with_columns(
            pl.lit(ctx.file_id).alias("file_id"),
            pl.col("raw").map_batches(
                lambda s: mask_rejected(s, keep_ips=ctx.keep_raw_ip), return_dtype=pl.String
            ),
        ),
        blank=fields.blank,
    )


def url_facts(urls: pl.Series) -> pl.DataFrame:
    """One row per URL: its path and query (scheme and host dropped) and the path's facts."""
    url_path = pl.col("url").str.replace(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*", "")
    return (
        urls.rename("url")
        .to_frame()
        .with_columns(
            url_path.str.extract(r"^([^?#]*)").alias("path"),
            url_path.str.extract(r"\?([^#]*)").alias("query"),
        )
        .with_columns(
            pl.when(pl.col("path") == "").then(None).otherwise(pl.col("path")).alias("path"),
            pl.when(pl.col("query") == "").then(None).otherwise(pl.col("query")).alias("query"),
        )
        .with_columns(alpine.path_facts())
    )


def _ua_facts(uas: pl.Series) -> pl.DataFrame:
    return uas.rename("user_agent").to_frame().with_columns(alpine.client_kind())


def _requests(good: pl.DataFrame, ctx: Context) -> pl.DataFrame:
    """Adds path facts, client kind, client identity and place; returns REQUESTS columns."""
    facts = [
        ctx.urls.attach(good["url"], url_facts).drop("url"),
        ctx.user_agents.attach(good["user_agent"], _ua_facts).drop("user_agent"),
        ctx.clients.attach(good["client"], lambda s: _new_clients(s, ctx)).drop("client"),
    ]
    out = pl.concat([good, *facts], how="horizontal").with_columns(
        pl.col("ts").dt.date().alias("date")
    )
    out = out.with_columns(
        _branch_resolved(out),
        pl.lit(ctx.source).alias("source"),
        pl.lit(ctx.file_id).alias("file_id"),
    )
    columns = [pl.col(name).cast(dtype) for name, dtype in REQUESTS.items()]
    if ctx.keep_raw_ip:
        columns.append(pl.col(RAW_IP_COLUMN[0]).cast(RAW_IP_COLUMN[1]))
    return out.select(columns)


def _branch_resolved(rows: pl.DataFrame) -> pl.Expr:
    """`branch`, with `latest-stable` resolved to the branch that was newest on the row's date."""
    latest = rows["branch"] == "latest-stable"
    if not latest.any():
        return pl.col("branch").alias("branch_resolved")
    resolved = alpine.resolve_latest_stable(rows.filter(latest)["date"])
    by_date = dict(
        zip(resolved["date"].to_list(), resolved["latest_stable"].to_list(), strict=True)
    )
    return (
        pl.when(pl.col("branch") == "latest-stable")
        .then(pl.col("date").replace_strict(by_date, default=None, return_dtype=pl.String))
        .otherwise(pl.col("branch"))
        .alias("branch_resolved")
    )


def _new_clients(clients: pl.Series, ctx: Context) -> pl.DataFrame:
    """Identity and place of clients never seen before in this file (CLIENT_SCHEMA rows)."""
    ip = addresses.canonical(clients)
    ips = ip.to_list()
    # A client that is not an address (a hostname in Apache logs) is still one client.
    hashed = privacy.client_ids(
        (a if a is not None else c.lower() for c, a in zip(clients.to_list(), ips, strict=True)),
        ctx.ip_key,
    )
    out = pl.DataFrame(
        {"client": clients, "client_ip": ip, "client_id": pl.Series(hashed, dtype=pl.Int64)}
    )
    out = out.with_columns(addresses.network(pl.col("client_ip")).alias("client_net"))
    distinct_ips = out["client_ip"].drop_nulls().unique().to_list()
    if ctx.geo is not None and distinct_ips:
        geo = ctx.geo.lookup(distinct_ips).rename({"client": "client_ip"})
        out = out.join(geo, on="client_ip", how="left", maintain_order="left")
    else:
        out = out.with_columns(
            pl.lit(None, t).alias(c) for c, t in CLIENT_SCHEMA.items() if c in GEO_COLUMNS
        )
    if not ctx.keep_raw_ip:
        out = out.with_columns(pl.lit(None, pl.String).alias("client_ip"))
    return out.select([pl.col(c).cast(t) for c, t in CLIENT_SCHEMA.items()])


def mask_rejected(raw: pl.Series, keep_ips: bool = False) -> pl.Series:
    """Truncates reject text to MAX_RAW_CHARS and masks the IP addresses in it (unless opted out)."""
    short = raw.str.slice(0, MAX_RAW_CHARS)
    if keep_ips:
        return short
    return pl.Series(
        raw.name,
        [None if t is None else addresses.mask_ip_text(t) for t in short.to_list()],
        dtype=pl.String,
    )


def open_enrichment(s: Settings) -> tuple[GeoIP, bytes]:
    """(GeoIP, ip key). Fails with a message naming the setting when a database is bad."""
    return GeoIP.from_settings(s), ip_key(s)


def ip_key(s: Settings) -> bytes:
    """The client-hash key: DLCDN_IP_KEY as loaded, else the environment's, else the key file."""
    if s.ip_key is not None:
        return privacy.ip_key(s.ip_key.get_secret_value())
    return privacy.load_ip_key()
