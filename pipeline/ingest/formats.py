"""Log formats: what a line looks like, how to tell a file's format, and how to read its fields.

Every format turns a frame of raw lines (`raw`) into the same intermediate fields (`FIELDS`, all
text) plus a `reason` that is null when the line parsed. Typing, validation and enrichment happen
once, downstream, for all formats alike (see `pipeline.ingest.parse`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from pipeline.ingest.reader import InputError

# The fields a format extracts; `time_kind` tells the parser how to read `time`.
FIELDS = (
    "time",
    "client",
    "request",
    "method",
    "url",
    "protocol",
    "status",
    "bytes",
    "referer",
    "user_agent",
    "pop",
    "cache_state",
    "elapsed_ms",
)

CLF_TIME = "%d/%b/%Y:%H:%M:%S %z"

# A quoted field as nginx and Apache 2 write it: `"` inside is escaped (`\x22` or `\"`).
_Q = r'((?:[^"\\]|\\.)*)'

# nginx `combined` (the T1 mirrors), Apache `combined`/`common`, optionally behind a vhost
# (`%v` / `$host`) and followed by extra fields (`"$http_x_forwarded_for"`, timings):
#   log_format combined '$remote_addr - $remote_user [$time_local] '
#                       '"$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"';
#   83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/ HTTP/1.1" 200 203023 "http://semicomplete.com/" "Mozilla/5.0 (Macintosh)"
# The client may be a list (`10.0.0.2, 10.0.0.1`, a forwarded chain): the first is the client.
# The request is matched lazily up to `" <status> <bytes>` because Apache 1.3 did not escape quotes
# inside it (`"GET /a"b HTTP/1.0"` is real, see the honeynet corpus).
COMBINED_PATTERN = (
    r"^(?:\S+ )?(\S+(?:, \S+)*) \S+ \S+ \[([^\]]*)\] "
    r'"(.*?)" (\d{3}|-) (\d+|-)'
    r'(?: "' + _Q + r'" "(.*?)")?(?:\s.*)?$'
)
_COMBINED_GROUPS = ("client", "time", "request", "status", "bytes", "referer", "user_agent")

# The request line: `GET /alpine/v3.20/main/x86_64/APKINDEX.tar.gz HTTP/1.1` (HTTP/0.9 has no
# protocol). Anything else (`-`, TLS bytes on port 80) leaves method/url/protocol null.
REQUEST_PATTERN = r"^([A-Z][A-Z_-]*) (\S+)(?: (HTTP/[0-9.]+))?$"

# Fastly log streaming: one JSON object per line, optionally behind a syslog prefix:
#   <134>2024-01-16T23:53:20Z cache-iad-kiad7000128 s3-request-logs[322614]: {"bytes":11355,"date_time":"2024-01-16T23:53:20.460557177Z","ip":"1.2.3.4","method":"GET","status":200,"url":"https://static.crates.io/crates/strsim/strsim-0.10.0.crate","version":"1"}
# The prefix (`<PRI>TIME HOST TAG: `, or rsyslog's `Mon DD HH:MM:SS HOST TAG: `) is optional; its
# host (`cache-iad-...`) names the POP when the JSON does not.
_SYSLOG_TIME = r"(?:<\d+>)?(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\S+) "
FASTLY_PREFIX_PATTERN = r"^(?:" + _SYSLOG_TIME + r"(\S+) [^:{]*: )?(\{.*\})\s*$"
# The same line with the whole prefix captured (group 1) instead of its host, for the lines the
# fast path does not read; and the prefix alone: checked without captures (the regex engine
# runs that as a DFA, several times faster), the host read from it only when it is needed.
_PREFIX = r"(?:" + _SYSLOG_TIME + r"\S+ [^:{]*: )?"
_FASTLY_LINE = r"^(" + _PREFIX + r")(\{.*\})\s*$"
_FASTLY_HEAD_OK = r"^" + _PREFIX + r"$"
_FASTLY_HOST = r"^" + _SYSLOG_TIME + r"(\S+) [^:{]*: $"

# Default JSON keys per field, first present wins. Fastly's recommended JSON log format names
# (`client_ip`, `request_method`, `response_status`, `response_body_size`, `response_state`, ...)
# come first, then common alternatives (crates.io's `ip`, `date_time`, `http.useragent`, ...).
# A dot means nesting (`http.useragent` is {"http": {"useragent": ...}}).
DEFAULT_FASTLY_KEYS: dict[str, tuple[str, ...]] = {
    "time": ("timestamp", "date_time", "time", "@timestamp", "start_time"),
    "client": ("client_ip", "ip", "clientip", "remote_addr", "client.ip"),
    "method": ("request_method", "method", "http.method"),
    "url": ("url", "request_url", "request_uri", "uri"),
    "protocol": ("request_protocol", "protocol", "http.protocol"),
    "status": ("response_status", "status", "http.status"),
    "bytes": ("response_body_size", "bytes", "body_bytes_sent", "resp_body_size"),
    "user_agent": ("request_user_agent", "user_agent", "useragent", "http.useragent"),
    "referer": ("request_referer", "referer", "http.referer"),
    "pop": ("server_datacenter", "pop", "datacenter", "edge_location"),
    "cache_state": ("response_state", "cache_state", "fastly_info_state", "cache_status"),
    # Fastly's time.elapsed.usec, in microseconds; elapsed_ms keys are taken as milliseconds.
    "elapsed_us": ("time_elapsed", "elapsed_usec", "time_elapsed_usec"),
    "elapsed_ms": ("elapsed_ms", "time_elapsed_ms"),
}


def _pop_from_host(out: pl.DataFrame) -> pl.DataFrame:
    """`pop` from the syslog host (cache-iad-kiad7000128 is in POP IAD) for the objects that name
    none; drops `__head`. Only those rows: most logs name the POP in the JSON, and reading the
    host costs a regex per line."""
    rows = (out["pop"].is_null() & out["reason"].is_null()).arg_true()
    pop = out["pop"]
    if len(rows):
        host = syslog_host(pl.col("__head")).str.extract(r"^cache-([a-z]{3})\d*-")
        found = out[rows].select(host.str.to_uppercase())
        pop = pop.scatter(rows, found.to_series())
    out = out.with_columns(pop).drop("__head")
    return out.with_columns(_str_or_null(pl.col("pop")).alias("pop"))


def _str_or_null(e: pl.Expr) -> pl.Expr:
    """`-` and empty strings are how logs write "unknown": they become null."""
    return pl.when(e.is_in(["-", ""])).then(None).otherwise(e)


@dataclass(frozen=True)
class LogFormat:
    """A parseable log format; `name` is what `--format` and `ingested_files.format` say."""

    name: str

    time_format: str = CLF_TIME

    def extract_frame(self, lines: pl.DataFrame) -> pl.DataFrame:  # pragma: no cover - abstract
        """`line_no`, `raw` -> `line_no`, `raw`, FIELDS (text) and `reason` (null if it parsed)."""
        raise NotImplementedError

    def matches(self, sample: Sequence[str]) -> int:
        """How many of the sample lines this format reads."""
        frame = pl.DataFrame(
            {"line_no": range(len(sample)), "raw": list(sample)},
            schema={"line_no": pl.Int64, "raw": pl.String},
        )
        return int(self.extract_frame(frame)["reason"].is_null().sum())


@dataclass(frozen=True)
class RegexFormat(LogFormat):
    """A line format read with one regex; `groups` names its capture groups in order."""

    pattern: str = COMBINED_PATTERN
    groups: tuple[str, ...] = _COMBINED_GROUPS
    elapsed_scale: float = 1.0  # to milliseconds
    # Read lines of the exact nginx `combined` shape by splitting instead (see _split_combined).
    fast_combined: bool = False

    def extract_frame(self, lines: pl.DataFrame) -> pl.DataFrame:
        if not self.fast_combined or lines.is_empty():
            return self._regex_fields(lines)
        fast = _split_combined(lines)
        ok = fast["reason"].is_null()
        if ok.all():
            return fast
        slow = self._regex_fields(lines.filter(~ok))
        return pl.concat([fast.filter(ok), slow]).sort("line_no")

    def _regex_fields(self, lines: pl.DataFrame) -> pl.DataFrame:
        # Each stage materialises its struct column once: polars would otherwise run the regex
        # again for every field taken from an inline extract_groups.
        groups = (
            pl.col("raw").str.extract_groups(self.pattern).struct.rename_fields(list(self.groups))
        )
        lf = lines.lazy().with_columns(groups.alias("__m")).unnest("__m")
        missing = [f for f in FIELDS if f not in self.groups]
        lf = lf.with_columns(pl.lit(None, pl.String).alias(f) for f in missing)
        if "request" in self.groups:
            req = pl.col("request").str.extract_groups(REQUEST_PATTERN).struct
            lf = lf.with_columns(req.rename_fields(["__rm", "__ru", "__rp"]).alias("__r")).unnest(
                "__r"
            )
            lf = lf.with_columns(
                pl.coalesce("method", "__rm").alias("method"),
                pl.coalesce("url", "__ru").alias("url"),
                pl.coalesce("protocol", "__rp").alias("protocol"),
            )
        elapsed = pl.col("elapsed_ms")
        if "elapsed_ms" in self.groups and self.elapsed_scale != 1.0:
            elapsed = (elapsed.cast(pl.Float64, strict=False) * self.elapsed_scale).cast(pl.String)
        matched = pl.col(self.groups[0]).is_not_null()
        return lf.select(
            "line_no",
            "raw",
            *_finish_fields(pl.col("client").str.extract(r"^([^,\s]+)"), elapsed),
            pl.when(matched).then(None).otherwise(pl.lit("no_match")).alias("reason"),
        ).collect(engine="streaming")


def _finish_fields(client: pl.Expr, elapsed: pl.Expr) -> list[pl.Expr]:
    """FIELDS in order from the extracted columns: `-` and empty text become null."""
    nullable = ("referer", "user_agent", "pop", "cache_state", "request")
    out = []
    for f in FIELDS:
        e = client if f == "client" else elapsed if f == "elapsed_ms" else pl.col(f)
        out.append((_str_or_null(e) if f in nullable or f == "client" else e).alias(f))
    return out


# The exact shape nginx's `combined` writes, checked piece by piece with capture-free patterns
# (which run as a DFA), then cut with split/slice: several times faster than a capturing regex.
_HEAD_OK = r"^\S+ \S+ \S+ \[[^\]]{26}\] $"
_MID_OK = r"^ \d{3} (?:\d+|-) $"
_REQUEST_OK = r"^[A-Z][A-Z_-]* \S+ HTTP/[0-9.]+$"


def _split_combined(lines: pl.DataFrame) -> pl.DataFrame:
    """Reads lines of the plain combined shape (6 quotes, no backslash); flags the rest no_match."""
    raw = pl.col("raw")
    # At most 8 pieces: the 8th holds whatever follows a 7th quote, so "exactly 6 quotes" is
    # "a 7th piece, no 8th" (cheaper than counting the quotes of the whole line).
    parts = raw.str.splitn('"', 8).struct.rename_fields(
        ["__head", "request", "__mid", "referer", "__sep", "user_agent", "__tail", "__more"]
    )
    lf = lines.lazy().with_columns(parts.alias("__p")).unnest("__p")
    head, mid = pl.col("__head"), pl.col("__mid")
    ok = (
        pl.col("__more").is_null()
        & ~raw.str.contains("\\", literal=True)
        & head.str.contains(_HEAD_OK)
        & mid.str.contains(_MID_OK)
        & (pl.col("__sep") == " ")
        & pl.col("request").str.contains(_REQUEST_OK)
        & (pl.col("__tail").str.len_bytes() == 0)
    )
    status_bytes = (
        mid.str.strip_chars(" ").str.split_exact(" ", 1).struct.rename_fields(["status", "bytes"])
    )
    req = (
        pl.col("request")
        .str.split_exact(" ", 2)
        .struct.rename_fields(["method", "url", "protocol"])
    )
    lf = lf.with_columns(
        head.str.split_exact(" ", 1).struct.field("field_0").alias("client"),
        head.str.slice(head.str.find("[", literal=True) + 1, 26).alias("time"),
        status_bytes.alias("__sb"),
        req.alias("__req"),
        pl.lit(None, pl.String).alias("pop"),
        pl.lit(None, pl.String).alias("cache_state"),
        pl.lit(None, pl.String).alias("elapsed_ms"),
    ).unnest("__sb", "__req")
    return lf.select(
        "line_no",
        "raw",
        *_finish_fields(pl.col("client"), pl.col("elapsed_ms")),
        pl.when(ok).then(None).otherwise(pl.lit("no_match")).alias("reason"),
    ).collect(engine="streaming")


COMBINED = RegexFormat("combined", fast_combined=True)
# `common` is `combined` without referer and user agent; the combined pattern reads both, so the
# name only records what the user said the file is.
COMMON = RegexFormat("common", fast_combined=True)


# nginx variables -> our fields. `$request` is split into method/url/protocol.
_NGINX_VARS = {
    "remote_addr": "client",
    "http_x_forwarded_for": "client",
    "binary_remote_addr": None,
    "time_local": "time",
    "time_iso8601": "time",
    "request": "request",
    "request_method": "method",
    "request_uri": "url",
    "uri": "url",
    "server_protocol": "protocol",
    "status": "status",
    "body_bytes_sent": "bytes",
    "bytes_sent": "bytes",
    "http_referer": "referer",
    "http_user_agent": "user_agent",
    "request_time": "elapsed_ms",
    "upstream_cache_status": "cache_state",
}


def nginx_format(log_format: str) -> RegexFormat:
    """Compiles an nginx `log_format` string into a RegexFormat.

    Quoted variables read up to the closing quote (nginx escapes `"` as `\\x22`), `[$time_local]`
    reads up to `]`, bare variables read up to the next space. Unknown variables are skipped.
    """
    parts = re.split(r"(\$\{?[a-zA-Z_][a-zA-Z0-9_]*\}?)", log_format)
    pattern = ["^"]
    groups: list[str] = []
    seen: set[str] = set()
    time_format = CLF_TIME
    elapsed_scale = 1.0
    for i, part in enumerate(parts):
        if i % 2 == 0:
            pattern.append(re.escape(part).replace("\\ ", " "))
            continue
        var = part.strip("${}")
        before = parts[i - 1][-1:] if parts[i - 1] else ""
        after = parts[i + 1][:1] if i + 1 < len(parts) and parts[i + 1] else ""
        if before == '"' and after == '"':
            sub = r'(?:[^"\\]|\\.)*'
        elif before == "[" and after == "]":
            sub = r"[^\]]*"
        elif var in ("remote_addr", "http_x_forwarded_for") and after != '"':
            sub = r"\S+(?:, \S+)*"
        else:
            sub = r"\S*"
        target = _NGINX_VARS.get(var)
        if target is None or target in seen:
            pattern.append(f"(?:{sub})")
            continue
        seen.add(target)
        groups.append(target)
        pattern.append(f"({sub})")
        if var == "time_iso8601":
            time_format = "iso"
        if var == "request_time":
            elapsed_scale = 1000.0  # seconds with millisecond resolution
    if "time" not in seen or "status" not in seen:
        raise ValueError(
            "an nginx log_format needs at least $time_local (or $time_iso8601) and $status"
        )
    pattern.append(r"\s*$")
    return RegexFormat(
        f"nginx:{log_format}",
        pattern="".join(pattern),
        groups=tuple(groups),
        time_format=time_format,
        elapsed_scale=elapsed_scale,
    )


def _key_tree(keys: Mapping[str, Sequence[str]]) -> pl.Struct:
    """The struct dtype that json_decode reads: every key path of every field, leaves as text."""
    tree: dict[str, dict | None] = {}
    for paths in keys.values():
        for path in paths:
            node = tree
            parts = path.split(".")
            for p in parts[:-1]:
                child = node.setdefault(p, {})
                if child is None:
                    child = node[p] = {}
                node = child
            node.setdefault(parts[-1], None)

    def build(node: dict) -> pl.Struct:
        return pl.Struct({k: pl.String if v is None else build(v) for k, v in node.items()})

    return build(tree)


def _field_path(struct: pl.Expr, path: str) -> pl.Expr:
    e = struct
    for p in path.split("."):
        e = e.struct.field(p)
    return e


@dataclass(frozen=True)
class FastlyFormat(LogFormat):
    """Fastly log streaming JSON, optionally behind a syslog prefix; key names are configurable."""

    keys: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: DEFAULT_FASTLY_KEYS)
    time_format: str = "iso"

    def extract_frame(self, lines: pl.DataFrame) -> pl.DataFrame:
        framed = _split_fastly(lines)
        try:
            return self._decode(framed)
        except pl.exceptions.ComputeError:
            # Some object is not valid JSON (truncated, garbled): find those lines in Python, which
            # costs per line but only for the batches that hold one, then decode the rest.
            valid = [_is_json_object(s) for s in framed["__json"]]
            bad = pl.Series("__bad", valid, dtype=pl.Boolean).not_()
            framed = framed.with_columns(
                pl.when(bad).then(None).otherwise(pl.col("__json")).alias("__json"),
                bad,
            )
        try:
            return self._decode(framed)
        except pl.exceptions.ComputeError:
            # Valid JSON whose values do not fit the key tree (an object where text was expected):
            # rare enough to find row by row.
            dtype = _key_tree(self.keys)
            fits = [_decodes(s, dtype) for s in framed["__json"]]
            bad = framed["__bad"] | pl.Series(fits, dtype=pl.Boolean).not_()
            framed = framed.with_columns(
                pl.when(bad).then(None).otherwise(pl.col("__json")).alias("__json"),
                bad.alias("__bad"),
            )
            return self._decode(framed)

    def _decode(self, framed: pl.DataFrame) -> pl.DataFrame:
        # Decoded once into a struct column; every field is then taken from it.
        decoded = pl.col("__json").str.json_decode(_key_tree(self.keys)).alias("__doc")
        reason: pl.Expr
        if "__bad" in framed.columns:
            reason = (
                pl.when(pl.col("__bad"))
                .then(pl.lit("bad_json"))
                .when(pl.col("__json").is_null())
                .then(pl.lit("no_match"))
            )
        else:
            reason = pl.when(pl.col("__json").is_null()).then(pl.lit("no_match"))
        out = (
            framed.lazy()
            .with_columns(decoded)
            .select(
                "line_no",
                "raw",
                *(e.alias(k) for k, e in self._fields(pl.col("__doc")).items()),
                reason.otherwise(None).alias("reason"),
                "__head",
            )
            .collect(engine="streaming")
        )
        return _pop_from_host(out)

    def _fields(self, doc: pl.Expr) -> dict[str, pl.Expr]:
        """Each field (as text) from the decoded object: the first of its key paths present."""

        def pick(name: str) -> pl.Expr:
            paths = self.keys.get(name, ())
            if not paths:
                return pl.lit(None, pl.String)
            return pl.coalesce([_field_path(doc, p) for p in paths])

        elapsed = pl.coalesce(
            pick("elapsed_ms").cast(pl.Float64, strict=False),
            pick("elapsed_us").cast(pl.Float64, strict=False) / 1000.0,
        )
        return {
            "time": pick("time"),
            "client": pick("client"),
            "request": pl.lit(None, pl.String),
            "method": pick("method"),
            "url": pick("url"),
            "protocol": pick("protocol"),
            "status": pick("status"),
            "bytes": pick("bytes"),
            "referer": _str_or_null(pick("referer")),
            "user_agent": _str_or_null(pick("user_agent")),
            "pop": pick("pop"),
            "cache_state": _str_or_null(pick("cache_state")),
            "elapsed_ms": elapsed.cast(pl.String),
        }

    def matches(self, sample: Sequence[str]) -> int:
        n = 0
        for line in sample:
            m = re.match(FASTLY_PREFIX_PATTERN, line)
            if m is None:
                continue
            try:
                if isinstance(json.loads(m.group(2)), dict):
                    n += 1
            except ValueError:
                pass
        return n


def syslog_host(head: pl.Expr) -> pl.Expr:
    """The host named in a syslog prefix (`<134>TIME HOST TAG: `), null if there is none."""
    return head.str.extract(_FASTLY_HOST, 1)


def _split_fastly(lines: pl.DataFrame) -> pl.DataFrame:
    """`raw` -> `__head` (the syslog prefix, empty if none) and `__json` (the object), as
    FASTLY_PREFIX_PATTERN reads them; both null when the line is not a (prefixed) JSON object.

    The line is cut at its first `{`, and only the short text before it is checked with a regex
    (a capture over the whole ~450-byte line cost more than decoding the JSON); lines whose cut
    does not read (a `{` inside the prefix, text after the object) go through the full pattern.
    """
    raw = pl.col("raw")
    start = raw.str.find("{", literal=True)
    head = raw.str.slice(0, start)
    fast = (
        lines.lazy()
        .with_columns(
            head.alias("__head"),
            raw.str.slice(start).alias("__json"),
            (head.str.contains(_FASTLY_HEAD_OK) & raw.str.ends_with("}"))
            .fill_null(False)
            .alias("__ok"),
        )
        .collect(engine="streaming")
    )
    ok = fast["__ok"]
    if ok.all():
        return fast.drop("__ok")
    whole = pl.col("raw").str.extract_groups(_FASTLY_LINE).struct
    slow = (
        fast.filter(~ok)
        .lazy()
        .with_columns(whole.field("1").alias("__head"), whole.field("2").alias("__json"))
        .collect(engine="streaming")
    )
    return pl.concat([fast.filter(ok), slow]).sort("line_no").drop("__ok")


def _decodes(text: str | None, dtype: pl.Struct) -> bool:
    if text is None:
        return True
    try:
        pl.Series([text]).str.json_decode(dtype)
    except pl.exceptions.ComputeError:
        return False
    return True


def _is_json_object(text: str | None) -> bool:
    if text is None:
        return True  # no object at all: a no_match, not a JSON error
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


FASTLY = FastlyFormat("fastly")

NAMED_FORMATS: dict[str, LogFormat] = {"combined": COMBINED, "common": COMMON, "fastly": FASTLY}


def resolve_format(
    spec: str, fastly_keys: Mapping[str, tuple[str, ...]] | None = None
) -> LogFormat | None:
    """`auto` -> None (detect per file); a name; or `nginx:'<log_format>'`."""
    if spec == "auto":
        return None
    if spec.startswith("nginx:"):
        return nginx_format(spec.removeprefix("nginx:").strip().strip("'"))
    if spec == "fastly" and fastly_keys:
        return FastlyFormat("fastly", keys={**DEFAULT_FASTLY_KEYS, **fastly_keys})
    try:
        return NAMED_FORMATS[spec]
    except KeyError:
        raise ValueError(
            f"unknown format {spec!r}: use auto, combined, common, fastly or nginx:'<log_format>'"
        ) from None


def detect_format(name: str, sample: Sequence[str], fastly: LogFormat = FASTLY) -> LogFormat:
    """The format that reads most of the sample; an InputError naming the file if none does."""
    if not sample:
        return COMBINED  # an empty (or all-blank) file: any format accounts for it
    scores = [(fmt.matches(sample), fmt) for fmt in (fastly, COMBINED)]
    best, fmt = max(scores, key=lambda s: s[0])
    if best == 0:
        first = sample[0][:80]
        raise InputError(
            f"{name}: unknown log format (none of combined, common, fastly reads its first "
            f"{len(sample)} lines; first line: {first!r}); give --format"
        )
    return fmt
