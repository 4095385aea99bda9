"""One batch of raw lines -> typed, enriched `requests` rows and `rejects` rows.

Every non-blank line ends in exactly one of the two frames: a line that does not read, or reads to
values outside their domain, becomes a reject with a reason (see `schema.REJECT_REASONS`).
Enrichment (path facts, client kind, geolocation, client hashing) runs on distinct values only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from pipeline import alpine
from pipeline.geo import privacy
from pipeline.geo.geoip import GEO_COLUMNS
from pipeline.ingest.formats import CLF_TIME, LogFormat
from pipeline.ingest.reader import MAX_RAW_CHARS, Batch
from pipeline.schema import RAW_IP_COLUMN, REQUESTS

# One row per distinct client: what `_new_clients` computes (the file's client FactCache rows).
CLIENT_SCHEMA = pl.Schema(
    [
        ("client", pl.String),
        *((c, REQUESTS[c]) for c in ("client_id", "client_net", *GEO_COLUMNS)),
        RAW_IP_COLUMN,
    ]
)


class Geolocator:
    """What parse needs of a GeoIP database: geo columns for distinct, normalised addresses."""

    def lookup(self, ips: list[str]) -> pl.DataFrame:  # pragma: no cover - protocol
        raise NotImplementedError


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
class Parsed:
    requests: pl.DataFrame
    rejects: pl.DataFrame  # file_id, line_no, raw, reason (date: assigned per file, see ingest)
    blank: int


@dataclass
class Typed:
    """A batch split into fields and typed, before enrichment."""

    good: pl.DataFrame  # the lines that read: typed fields, line_no, raw
    rejects: pl.DataFrame  # line_no, raw, reason
    blank: int


def parse_batch(batch: Batch, ctx: Context) -> Parsed:
    """Parses and enriches one batch of lines."""
    return enrich_typed(type_batch(batch, ctx.fmt), ctx)


def type_batch(batch: Batch, fmt: LogFormat) -> Typed:
    """Splits a batch's lines into fields and types them; lines that do not read get a reason."""
    n = len(batch.lines)
    lines = pl.DataFrame(
        {
            "line_no": pl.int_range(batch.first_line_no, batch.first_line_no + n, eager=True),
            "raw": pl.from_arrow(batch.lines),
        }
    ).with_columns(pl.col("raw").str.strip_chars_end("\r\n"))
    pre = pl.Series("pre_reason", [None] * n, dtype=pl.String)
    if batch.bad:
        idx = list(batch.bad)
        pre = pre.scatter(idx, [batch.bad[i] for i in idx])
    lines = lines.with_columns(pre)
    blank_mask = lines["raw"].str.strip_chars().str.len_bytes() == 0
    blank_mask = blank_mask & lines["pre_reason"].is_null()
    blank = int(blank_mask.sum())
    if blank:
        lines = lines.filter(~blank_mask)
    pre_rejects = lines.filter(pl.col("pre_reason").is_not_null()).select(
        "line_no", "raw", pl.col("pre_reason").alias("reason")
    )
    if batch.bad:
        lines = lines.filter(pl.col("pre_reason").is_null())
    fields = fmt.extract_frame(lines.select("line_no", "raw"))
    typed = fields.lazy().pipe(_typed, fmt.time_format).collect(engine="streaming")
    rejects = pl.concat(
        [
            pre_rejects,
            typed.filter(pl.col("reason").is_not_null()).select("line_no", "raw", "reason"),
        ]
    )
    return Typed(good=typed.filter(pl.col("reason").is_null()), rejects=rejects, blank=blank)


def enrich_typed(typed: Typed, ctx: Context) -> Parsed:
    """The enriched rows of a typed batch, and its rejects with the file and masked text."""
    return Parsed(
        requests=_enrich(typed.good, ctx),
        rejects=typed.rejects.sort("line_no").with_columns(
            pl.lit(ctx.file_id).alias("file_id"),
            pl.col("raw").map_batches(
                lambda s: mask_ips(s, keep_ips=ctx.keep_raw_ip), return_dtype=pl.String
            ),
        ),
        blank=typed.blank,
    )


def _parse_time(time: pl.Expr, time_format: str) -> pl.Expr:
    if time_format == "iso":
        return time.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
    return time.str.to_datetime(
        time_format or CLF_TIME, time_unit="us", strict=False
    ).dt.convert_time_zone("UTC")


def _typed(lf: pl.LazyFrame, time_format: str) -> pl.LazyFrame:
    """Text fields -> typed columns, and the reason for lines whose values do not hold."""
    status = pl.col("status").cast(pl.Int16, strict=False)
    nbytes = (
        pl.when(pl.col("bytes").is_null() | (pl.col("bytes") == "-"))
        .then(pl.lit(0, pl.Int64))
        .otherwise(pl.col("bytes").cast(pl.Int64, strict=False))
    )
    return lf.with_columns(
        _parse_time(pl.col("time"), time_format).alias("ts"),
        status.alias("status"),
        nbytes.alias("bytes"),
        pl.col("elapsed_ms").cast(pl.Float64, strict=False),
    ).with_columns(
        pl.coalesce(
            pl.col("reason"),
            pl.when(pl.col("time").is_null() | pl.col("status").is_null()).then(
                pl.lit("missing_field")
            ),
            pl.when(pl.col("ts").is_null()).then(pl.lit("bad_timestamp")),
            pl.when(
                (pl.col("status") < 100)
                | (pl.col("status") > 599)
                | pl.col("bytes").is_null()
                | (pl.col("bytes") < 0)
            ).then(pl.lit("bad_value")),
        ).alias("reason"),
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


def _enrich(good: pl.DataFrame, ctx: Context) -> pl.DataFrame:
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


# Dotted-quad IPv4 (the vast majority): checked and canonicalised in polars; anything with a colon
# goes through `ipaddress`; the rest (hostnames) is not an address.
_V4 = r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$"


def _new_clients(clients: pl.Series, ctx: Context) -> pl.DataFrame:
    octets = clients.str.extract_groups(_V4).struct.unnest().select(pl.all().cast(pl.Int32))
    v4_ok = octets.select(pl.all_horizontal(pl.all().is_not_null() & (pl.all() <= 255))).to_series()
    v4 = octets.select(pl.concat_str(pl.all().cast(pl.String), separator=".")).to_series()
    ip = v4.zip_with(v4_ok, pl.Series([None] * len(clients), dtype=pl.String))
    others = clients.filter(~v4_ok & clients.str.contains(":", literal=True))
    if len(others):
        mapping = {c: privacy.normalise_ip(c) for c in others.to_list()}
        ip = ip.zip_with(
            ip.is_not_null(), clients.replace_strict(mapping, default=None, return_dtype=pl.String)
        )
    ips = ip.to_list()
    # A client that is not an address (a hostname in Apache logs) is still one client.
    hashed = privacy.client_ids(
        (a if a is not None else c.lower() for c, a in zip(clients.to_list(), ips, strict=True)),
        ctx.ip_key,
    )
    out = pl.DataFrame(
        {"client": clients, "client_ip": ip, "client_id": pl.Series(hashed, dtype=pl.Int64)}
    )
    out = out.with_columns(
        pl.when(pl.col("client_ip").str.contains(":", literal=True))
        .then(pl.col("client_ip").map_elements(privacy.network_of, return_dtype=pl.String))
        .otherwise(pl.col("client_ip").str.replace(r"\.\d+$", ".0/24"))
        .alias("client_net")
    )
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


_IPV4_RE = re.compile(r"(?<![\d.])(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}(?![\d.])")
# IPv6 written with a dotted IPv4 tail (::ffff:192.0.2.1), then plain IPv6; neither may run into
# a following "." (that is the mixed form) or hex digit.
_IPV6_DOTTED_RE = re.compile(
    r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,6}\d{1,3}(?:\.\d{1,3}){3}(?![\d.])"
)
_IPV6_RE = re.compile(
    r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:.])"
)


def _mask_v6(m: re.Match[str]) -> str:
    text = m.group(0)
    try:
        addr = ipaddress.IPv6Address(text)
    except ValueError:
        # Not a whole address: a line cut inside one ("2403:edc0:3f17:1598") still names a /64.
        # Keep its first 48 bits when it looks like one (three or more full hextets: clock times
        # like 10:00:00 never do); leave other colon text alone.
        groups = text.split(":")
        if sum(len(g) == 4 for g in groups) >= 3:
            return ":".join(groups[:3]) + "::"
        return text
    if addr.ipv4_mapped is not None:
        return "::ffff:" + privacy.network_of(str(addr.ipv4_mapped)).removesuffix("/24")
    return str(ipaddress.IPv6Network(f"{addr}/48", strict=False).network_address)


def mask_ip_text(text: str) -> str:
    """Masks every IP address in free text to its /24 or /48 prefix (reject rows keep no IP)."""
    text = _IPV6_DOTTED_RE.sub(_mask_v6, text)
    text = _IPV4_RE.sub(lambda m: m.group(1) + ".0", text)
    return _IPV6_RE.sub(_mask_v6, text)


def mask_ips(raw: pl.Series, keep_ips: bool = False) -> pl.Series:
    """Truncates reject text to MAX_RAW_CHARS and masks the IP addresses in it (unless opted out)."""
    short = raw.str.slice(0, MAX_RAW_CHARS)
    if keep_ips:
        return short
    return pl.Series(
        raw.name, [None if t is None else mask_ip_text(t) for t in short.to_list()], dtype=pl.String
    )


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()
