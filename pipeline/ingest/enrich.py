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
    """Fact rows keyed by one column, computed once per key and shared by the batches of a file.

    A batch costs a probe of the cached rows (in polars, no per-value Python), and the compute
    function runs on the keys never seen before only. Past `max_rows` the cache starts over, so
    memory stays bounded however many distinct keys a file has.

    The rows live in two frames: `main`, kept in one chunk, and `recent`, the rows added since
    `main` was last rebuilt. Probing a frame of many chunks costs several times more (a batch
    adds a chunk), and copying the whole cache into one chunk at every batch would cost as much
    again; `recent` is merged into `main` once it reaches a quarter of it, so each row is copied
    a few times over a file, not once per batch.
    """

    _HASH = "__key_hash"
    _MERGE_FRACTION = 4  # `recent` joins `main` past 1/4 of its rows
    _RECENT_CHUNKS = 8  # and is put in one chunk past this many

    def __init__(self, key: str, max_rows: int = 1_000_000) -> None:
        self.key = key
        self.max_rows = max_rows
        # Fact rows plus the key's 64-bit hash.
        self.main: pl.DataFrame | None = None
        self.recent: pl.DataFrame | None = None
        self.lock = threading.Lock()

    @property
    def table(self) -> pl.DataFrame | None:
        """Every cached row (one frame; for inspection)."""
        levels = self._levels()
        return pl.concat(levels) if levels else None

    def _levels(self) -> list[pl.DataFrame]:
        return [t for t in (self.main, self.recent) if t is not None]

    def _hashed(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.col(self.key).hash().alias(self._HASH))

    def lookup(
        self, values: pl.Series, compute: Callable[[pl.Series], pl.DataFrame]
    ) -> pl.DataFrame:
        """The fact rows of every distinct non-null value of `values`."""
        distinct = self._hashed(values.drop_nulls().unique().rename(self.key).to_frame())
        with self.lock:
            levels = self._levels()
        if not levels:
            known, missing = None, distinct[self.key]
        else:
            known = self._among(levels, distinct)
            if known.height == distinct.height:
                return known.drop(self._HASH)
            missing = distinct.join(known.select(self.key), on=self.key, how="anti")[self.key]
        rows = self._hashed(compute(missing))
        self._add(rows)
        out = rows if known is None else pl.concat([known, rows])
        return out.drop(self._HASH)

    def _among(self, levels: list[pl.DataFrame], keys: pl.DataFrame) -> pl.DataFrame:
        """The cached rows whose key is in `keys` (a frame with the key and its hash).

        Rows are picked by the integer hash of the batch's keys (a hash set of the batch's few
        keys, probed by the cache's hash column; a string join would hash the whole cache every
        batch), then the few candidates are checked on the key itself, so a hash collision
        cannot hand one key another's facts.
        """
        wanted = pl.col(self._HASH).is_in(keys[self._HASH].implode())
        candidates = pl.concat([t.filter(wanted) for t in levels]).rechunk()
        return candidates.join(keys.select(self.key), on=self.key, how="semi")

    def _add(self, rows: pl.DataFrame) -> None:
        # Text taken from a batch is a view into that batch's buffers: kept as it is, each cached
        # row would keep its whole batch alive. Own copies cost little (new keys only).
        rows = rows.with_columns(pl.col(pl.String) + "")
        with self.lock:
            levels = self._levels()
            if not levels or sum(t.height for t in levels) + rows.height > self.max_rows:
                self.main, self.recent = rows.rechunk(), None
                return
            # Another thread may have added some of the same keys meanwhile: keep one row per key.
            dup = self._among(levels, rows)
            if dup.height:
                rows = rows.join(dup.select(self.key), on=self.key, how="anti")
            recent = rows if self.recent is None else pl.concat([self.recent, rows], rechunk=False)
            assert self.main is not None
            if recent.height * self._MERGE_FRACTION > self.main.height:
                self.main, self.recent = pl.concat([self.main, recent]).rechunk(), None
            else:
                self.recent = (
                    recent.rechunk() if recent.n_chunks() > self._RECENT_CHUNKS else recent
                )


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
    urls = ctx.urls.lookup(good["url"], url_facts)
    uas = ctx.user_agents.lookup(good["user_agent"], _ua_facts)
    clients = ctx.clients.lookup(good["client"], lambda s: _new_clients(s, ctx))
    out = (
        good.with_columns(pl.col("ts").dt.date().alias("date"))
        .join(urls, on="url", how="left", maintain_order="left")
        .join(uas, on="user_agent", how="left", maintain_order="left")
        .join(clients, on="client", how="left", maintain_order="left", nulls_equal=True)
    )
    if (out["branch"] == "latest-stable").any():
        resolved = alpine.resolve_latest_stable(
            out.filter(pl.col("branch") == "latest-stable")["date"]
        )
        out = out.join(resolved, on="date", how="left", maintain_order="left").with_columns(
            pl.when(pl.col("branch") == "latest-stable")
            .then(pl.col("latest_stable"))
            .otherwise(pl.col("branch"))
            .alias("branch_resolved")
        )
    else:
        out = out.with_columns(pl.col("branch").alias("branch_resolved"))
    out = out.with_columns(
        pl.lit(ctx.source).alias("source"),
        pl.lit(ctx.file_id).alias("file_id"),
    )
    columns = [pl.col(name).cast(dtype) for name, dtype in REQUESTS.items()]
    if ctx.keep_raw_ip:
        columns.append(pl.col(RAW_IP_COLUMN[0]).cast(RAW_IP_COLUMN[1]))
    return out.select(columns)


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
