"""GoAccess as the independent analyzer for dlcdn's acceptance tests.

The acceptance test runs dlcdn and GoAccess (Debian package ``goaccess``, 1.7) on the same real log
files and compares request counts, byte sums, per-status counts and per-country counts. This module
runs GoAccess non-interactively with JSON output and turns its report into a small `Summary`.
It shares no code with ``pipeline/``: GoAccess does the parsing, this module only moves bytes.

What GoAccess 1.7 counts (read from its parser and checked line by line on the corpora):

- ``general.valid_requests`` = lines that parsed; ``failed_requests`` = lines that did not;
  ``total_requests`` = both. No deduplication: identical lines are counted each time.
- Not counted at all: a line that is exactly ``\\n`` and any line whose first byte is ``#``.
- All methods (unknown ones too), all statuses 100..599 (4xx/5xx included), crawlers and static
  files are counted; none of the filtering options (``--ignore-crawlers``, ``--ignore-statics``,
  ``--ignore-status``, ``--exclude-ip``) is passed. ``--444-as-404`` and ``--4xx-to-unique-count``
  only change the not-found panel and the visitor count, never hits or bytes, so they are left off.
- ``bandwidth`` = sum of ``%b`` over valid lines; ``-`` or any non-number counts as 0; a negative
  number wraps around (strtoull), so ``-5`` adds 2**64 - 5.
- Accepted: IPv6 clients (also ``[v6]`` and ``::ffff:1.2.3.4``), ``"-"`` or ``""`` or garbage as
  the request (``"-" 408 - "-" "-"``), requests without protocol, unknown or lowercase methods,
  invalid UTF-8, ``\\"`` inside quoted fields, an unterminated last quote, extra fields after
  the user agent, an authuser with spaces.
- Rejected: client not an IPv4/IPv6 literal (hostnames, ``a, b`` X-Forwarded-For lists, a vhost
  in front) unless ``validate_ip=False``; status not an integer in 100..599; bad date; a request
  field with an unescaped quote that shifts the fields; with COMBINED, a line that ends after
  ``%b`` (a Common Log Format line).
- Debian's build reads lines with ``fgets`` into a 4096-byte buffer, so a line longer than 4095
  bytes is read as several pieces, each one counted (the first may even be valid). This module
  keeps such lines away from GoAccess and returns them in `Summary.oversized_lines` so the caller
  can decide about them explicitly (``keep_oversized=True`` feeds them anyway).
- Fastly lines (syslog prefix + JSON) are read with GoAccess's JSON log format after the syslog
  prefix is removed here; see `FASTLY_JSON`.
"""

from __future__ import annotations

import builtins
import bz2
import gzip
import json
import lzma
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import zstandard

__all__ = [
    "FASTLY_JSON",
    "GOACCESS_MAX_LINE",
    "GoAccessError",
    "Summary",
    "goaccess_available",
    "goaccess_summary",
]

#: Pseudo log format: Fastly syslog lines such as
#: ``<134>2024-01-16T23:53:20Z cache-iad-kiad7000128 s3-request-logs[322614]: {"bytes":11355,
#: "date_time":"2024-01-16T23:53:20.460557177Z","ip":"1.2.3.4","method":"GET","status":200,
#: "url":"https://static.crates.io/crates/strsim/strsim-0.10.0.crate","version":"1"}``.
FASTLY_JSON = "FASTLY_JSON"

#: Longest line (bytes, without the newline) that Debian's goaccess 1.7 reads in one piece:
#: it is built without ``--with-getline`` and reads with ``fgets(buf, 4096, fp)``.
GOACCESS_MAX_LINE = 4095

# The syslog header Fastly puts before each JSON record. Only this exact shape is removed; any
# other line goes to GoAccess unchanged (and fails its JSON parser unless it is a bare object).
_FASTLY_SYSLOG_PREFIX = re.compile(rb"^<\d{1,3}>\S+ \S+ [^\s:\[]+(?:\[\d+\])?: ")

# GoAccess's JSON log format: keys of the record -> format specifiers. The method is left out on
# purpose: ``%m`` rejects methods missing from GoAccess's list (e.g. PURGE), while ``%r`` for the
# text formats accepts any method, so both routes count every method. ``%x`` with ``...%S%Z``
# accepts "2024-01-16T23:53:20.460557177Z" and "2024-01-16T23:53:20Z" alike (glibc's %Z skips
# the rest of the token).
_FASTLY_GOACCESS_ARGS = (
    '--log-format={"bytes":"%b","date_time":"%x","ip":"%h","status":"%s","url":"%U"}',
    "--datetime-format=%Y-%m-%dT%H:%M:%S%Z",
)

# Predefined GoAccess formats that set their own date and time formats.
_PREDEFINED_FORMATS = frozenset(
    [
        "COMBINED",
        "VCOMBINED",
        "COMMON",
        "VCOMMON",
        "W3C",
        "SQUID",
        "CLOUDFRONT",
        "CLOUDSTORAGE",
        "AWSELB",
        "AWSS3",
        "AWSALB",
        "CADDY",
    ]
)

# Panels that are not needed: skipping them makes GoAccess faster and keeps raw URLs and user
# agents (often invalid UTF-8) out of the JSON. The general section does not depend on them.
_IGNORED_PANELS = [
    "VISITORS",
    "REQUESTS",
    "REQUESTS_STATIC",
    "NOT_FOUND",
    "HOSTS",
    "OS",
    "BROWSERS",
    "VISIT_TIMES",
    "VIRTUAL_HOSTS",
    "REFERRERS",
    "REFERRING_SITES",
    "KEYPHRASES",
    "REMOTE_USER",
    "CACHE_STATUS",
    "MIME_TYPE",
    "TLS_TYPE",
]

# "GB United Kingdom" -> "GB"; GoAccess's other label is "Unknown" (not found, private address,
# or a record without a "country" entry: it never falls back to "registered_country").
_COUNTRY_LABEL = re.compile(r"^([A-Z]{2}) ")


class GoAccessError(RuntimeError):
    """GoAccess failed, or its report does not add up."""


@dataclass(frozen=True)
class Summary:
    """What GoAccess counted over a set of log files."""

    total_requests: int
    """Valid requests (GoAccess ``valid_requests``): lines it parsed and counted as hits."""
    failed_requests: int
    """Lines GoAccess tried and rejected (``failed_requests``)."""
    bytes: int
    """Sum of the response size over valid requests (GoAccess ``bandwidth``)."""
    status_counts: dict[int, int]
    """Valid requests per HTTP status."""
    countries: dict[str, int] = field(default_factory=dict)
    """Valid requests per ISO 3166 alpha-2 code, or ``"Unknown"``; empty without ``geoip_db``."""
    ignored_lines: int = 0
    """Lines GoAccess skips without counting: exactly empty, or starting with ``#``."""
    oversized_lines: list[builtins.bytes] = field(default_factory=list)
    """Lines longer than `GOACCESS_MAX_LINE` bytes, kept away from GoAccess (see module doc)."""


def goaccess_available(*, geoip: bool = False) -> bool:
    """Whether a usable ``goaccess`` is on PATH (and, with ``geoip``, built with libmaxminddb)."""
    exe = shutil.which("goaccess")
    if exe is None:
        return False
    try:
        out = subprocess.run(
            [exe, "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return not geoip or "--enable-geoip=mmdb" in out


def goaccess_summary(
    paths: Sequence[Path],
    log_format: str = "COMBINED",
    geoip_db: Path | None = None,
    *,
    validate_ip: bool = True,
    keep_oversized: bool = False,
) -> Summary:
    """Run GoAccess once over ``paths`` and summarise its JSON report.

    ``paths`` may be plain or compressed (``.gz``, ``.zst``, ``.bz2``, ``.xz``); they are
    decompressed here. ``log_format`` is a GoAccess predefined name (``COMBINED``, ``COMMON``,
    ``VCOMBINED`` ...), `FASTLY_JSON`, or a GoAccess format string (then CLF timestamps,
    ``%d/%b/%Y`` and ``%T``, are assumed). ``validate_ip=False`` passes ``--no-ip-validation``
    so hostname clients count. ``keep_oversized=True`` feeds over-long lines to GoAccess too,
    reproducing its split-line counting instead of setting them aside.
    """
    exe = shutil.which("goaccess")
    if exe is None:
        raise GoAccessError("goaccess is not installed (apt-get install goaccess)")
    strip_syslog = log_format == FASTLY_JSON
    with tempfile.TemporaryDirectory(prefix="goaccess-") as tmp:
        workdir = Path(tmp)
        inputs: list[Path] = []
        ignored = 0
        oversized: list[bytes] = []
        for i, path in enumerate(paths):
            staged = workdir / f"input-{i}.log"
            ignored += _stage(path, staged, strip_syslog, keep_oversized, oversized)
            inputs.append(staged)

        report = workdir / "report.json"
        cmd = [
            exe,
            "--no-global-config",
            "--num-tests=0",  # don't abort when the first 10 lines are all invalid
            "--no-progress",
            "--no-parsing-spinner",
            "--max-items=1000000",
            *(f"--ignore-panel={panel}" for panel in _IGNORED_PANELS),
            *_format_args(log_format),
        ]
        if not validate_ip:
            cmd.append("--no-ip-validation")
        if geoip_db is not None:
            cmd.append(f"--geoip-database={geoip_db}")
        cmd += ["-o", str(report), *map(str, inputs)]
        # HOME points at the temp folder so no ~/.goaccessrc is read; TZ only fixes how dates
        # are shown. stdin is closed: GoAccess also reads a piped stdin next to the files.
        env = {**os.environ, "HOME": str(workdir), "TZ": "UTC"}
        done = subprocess.run(
            cmd, capture_output=True, stdin=subprocess.DEVNULL, env=env, cwd=workdir, check=False
        )
        if done.returncode != 0 or not report.exists():
            raise GoAccessError(
                f"goaccess exited {done.returncode}: {done.stderr.decode(errors='replace')}"
            )
        # Panel labels can carry raw bytes from the log; GoAccess does not escape them.
        data = json.loads(report.read_bytes().decode("utf-8", "surrogateescape"), strict=False)

    return _summarise(data, geoip=geoip_db is not None, ignored=ignored, oversized=oversized)


def _format_args(log_format: str) -> list[str]:
    if log_format == FASTLY_JSON:
        return list(_FASTLY_GOACCESS_ARGS)
    if log_format.upper() in _PREDEFINED_FORMATS:
        return [f"--log-format={log_format.upper()}"]
    return [f"--log-format={log_format}", "--date-format=%d/%b/%Y", "--time-format=%T"]


@contextmanager
def _open_decompressed(path: Path) -> Iterator[BinaryIO]:
    name = path.name
    if name.endswith(".gz"):
        with gzip.open(path, "rb") as fh:
            yield fh  # type: ignore[misc]
    elif name.endswith(".zst"):
        with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as fh:
            yield fh
    elif name.endswith(".bz2"):
        with bz2.open(path, "rb") as fh:
            yield fh  # type: ignore[misc]
    elif name.endswith(".xz"):
        with lzma.open(path, "rb") as fh:
            yield fh  # type: ignore[misc]
    else:
        with path.open("rb") as fh:
            yield fh


def _lines(fh: BinaryIO) -> Iterator[bytes]:
    """Lines split on ``\\n`` only (like fgets), newline kept; works on decompressor streams."""
    pending = b""
    while chunk := fh.read(1 << 20):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending


def _stage(
    src: Path, dst: Path, strip_syslog: bool, keep_oversized: bool, oversized: list[bytes]
) -> int:
    """Copy ``src`` to ``dst`` as GoAccess should see it; return the lines GoAccess will skip."""
    ignored = 0
    with _open_decompressed(src) as fh, dst.open("wb") as out:
        for line in _lines(fh):
            if strip_syslog:
                line = _FASTLY_SYSLOG_PREFIX.sub(b"", line, count=1)
            if len(line.removesuffix(b"\n")) > GOACCESS_MAX_LINE and not keep_oversized:
                oversized.append(line.removesuffix(b"\n"))
                continue
            # GoAccess's valid_line(): "\n" alone and "#..." are skipped before any counting.
            if line == b"\n" or line.startswith(b"#"):
                ignored += 1
            out.write(line)
    return ignored


def _leading_int(label: str) -> int:
    match = re.match(r"\d+", label)
    if match is None:
        raise GoAccessError(f"unexpected status label {label!r}")
    return int(match.group())


def _panel_items(data: dict, panel: str) -> Iterator[tuple[str, int]]:
    for group in data.get(panel, {}).get("data", []):
        for item in group.get("items", []):
            yield item["data"], int(item["hits"]["count"])


def _summarise(data: dict, *, geoip: bool, ignored: int, oversized: list[bytes]) -> Summary:
    general = data["general"]
    valid = int(general["valid_requests"])

    status_counts: dict[int, int] = {}
    for label, hits in _panel_items(data, "status_codes"):
        code = _leading_int(label)
        status_counts[code] = status_counts.get(code, 0) + hits

    countries: dict[str, int] = {}
    if geoip:
        for label, hits in _panel_items(data, "geolocation"):
            match = _COUNTRY_LABEL.match(label)
            key = match.group(1) if match else label
            countries[key] = countries.get(key, 0) + hits

    if sum(status_counts.values()) != valid or (geoip and sum(countries.values()) != valid):
        raise GoAccessError(
            f"panels do not add up to {valid} valid requests: {status_counts=} {countries=}"
        )
    return Summary(
        total_requests=valid,
        failed_requests=int(general["failed_requests"]),
        bytes=int(general["bandwidth"]),
        status_counts=dict(sorted(status_counts.items())),
        countries=dict(sorted(countries.items())),
        ignored_lines=ignored,
        oversized_lines=oversized,
    )
