"""IP addresses and their prefixes: reading client fields, the /24 and /48 networks, masking text.

Two readings of IPv4 text, on purpose:
- a *client field* (`canonical`, `normalise_ip`) is read as nginx and Apache write it: a dotted
  quad whose leading zeros are decimal ("010.1.2.3" is 10.1.2.3), IPv4-mapped IPv6 as IPv4;
- a *database lookup key* (`lookup_keys`) must be strictly one address: libmaxminddb parses with
  getaddrinfo(), which also takes inet_aton() shorthand ("134744072" and "010.8.8.8" both look up
  8.8.8.8), and a numeric host name or id must not get a location.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence

import polars as pl

# A client field's dotted quad: four groups of 1-3 digits, each checked <= 255 afterwards.
IPV4_FIELD = r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$"
_IPV4_FIELD = re.compile(IPV4_FIELD)
_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"

# A strict dotted quad (no leading zeros, every octet <= 255), for lookup keys.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_STRICT = rf"(?:{_OCTET}\.){{3}}{_OCTET}"
# IPv6 text: hex, colons, an optional dotted tail. Zone ids ("fe80::1%eth0") are link-local, never
# a remote client, and NUL bytes would make the C extension raise TypeError, so both are excluded.
_IPV6_TEXT = r"^[0-9A-Fa-f:.]{2,45}$"
# IPv4-mapped IPv6 as a dual-stack socket logs it: "::ffff:1.2.3.4" (also fully written out).
_MAPPED_DOTTED = rf"^(?i:::ffff:|(?:0{{1,4}}:){{5}}ffff:)({IPV4_STRICT})$"
# The rare hex spelling "::ffff:102:304" is fixed up row by row with `ipaddress`.
_MAPPED_HEX = r"^(?i:::ffff:|(?:0{1,4}:){5}ffff:)[0-9a-f]{1,4}:[0-9a-f]{1,4}$"

# Addresses inside free text (reject lines): IPv4, IPv6 written with a dotted IPv4 tail
# (::ffff:192.0.2.1), then plain IPv6; neither may run into a following "." (that is the mixed
# form) or hex digit.
_IPV4_IN_TEXT = re.compile(r"(?<![\d.])(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}(?![\d.])")
_IPV6_DOTTED_IN_TEXT = re.compile(
    r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,6}\d{1,3}(?:\.\d{1,3}){3}(?![\d.])"
)
_IPV6_IN_TEXT = re.compile(
    r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:.])"
)


def normalise_ip(client: str) -> str | None:
    """The canonical text of an IP address (IPv4-mapped IPv6 as IPv4), or None if not an address.

    Leading zeros in IPv4 are read as decimal (never octal), as nginx and Apache write them.
    """
    m = _IPV4_FIELD.match(client)
    if m:
        if all(int(o) <= 255 for o in m.groups()):
            return ".".join(str(int(o)) for o in m.groups())
        return None
    if ":" not in client:
        return None
    try:
        packed = socket.inet_pton(socket.AF_INET6, client.strip("[]").split("%", 1)[0])
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return None
    if packed[:12] == _V4_MAPPED:
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return socket.inet_ntop(socket.AF_INET6, packed)


def network_of(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) prefix of a normalised address, as text."""
    if ":" not in ip:
        return ip.rsplit(".", 1)[0] + ".0/24"
    packed = socket.inet_pton(socket.AF_INET6, ip)
    return socket.inet_ntop(socket.AF_INET6, packed[:6] + b"\x00" * 10) + "/48"


def canonical(clients: pl.Series) -> pl.Series:
    """`normalise_ip` of every client field, None where it is not an address.

    Dotted quads (the vast majority) are checked and rewritten in polars; anything with a colon
    goes through `normalise_ip` one by one; the rest (host names) is not an address.
    """
    octets = clients.str.extract_groups(IPV4_FIELD).struct.unnest().select(pl.all().cast(pl.Int32))
    v4_ok = octets.select(pl.all_horizontal(pl.all().is_not_null() & (pl.all() <= 255))).to_series()
    v4 = octets.select(pl.concat_str(pl.all().cast(pl.String), separator=".")).to_series()
    ip = v4.zip_with(v4_ok, pl.Series([None] * len(clients), dtype=pl.String))
    others = clients.filter(~v4_ok & clients.str.contains(":", literal=True))
    if len(others):
        mapping = {c: normalise_ip(c) for c in others.to_list()}
        ip = ip.zip_with(
            ip.is_not_null(), clients.replace_strict(mapping, default=None, return_dtype=pl.String)
        )
    return ip


def network(ip: pl.Expr) -> pl.Expr:
    """`network_of` as an expression over canonical addresses (null stays null)."""
    return (
        pl.when(ip.str.contains(":", literal=True))
        .then(ip.map_elements(network_of, return_dtype=pl.String))
        .otherwise(ip.str.replace(r"\.\d+$", ".0/24"))
    )


def lookup_keys(ips: Sequence[str] | pl.Series) -> list[str | None]:
    """The text to look up in a GeoIP database for each input: IPv4-mapped IPv6 unwrapped,
    anything that is not strictly an IP address (a host name, "-", inet_aton shorthand) None."""
    client = ips if isinstance(ips, pl.Series) else pl.Series("client", ips, dtype=pl.String)
    key = client.str.replace(_MAPPED_DOTTED, "${1}")
    is_ip = key.str.contains(f"^{IPV4_STRICT}$") | (
        key.str.contains(":", literal=True) & key.str.contains(_IPV6_TEXT)
    )
    keys: list[str | None] = pl.select(pl.when(is_ip).then(key)).to_series().to_list()
    for i in key.str.contains(_MAPPED_HEX).fill_null(False).arg_true().to_list():
        mapped = ipaddress.IPv6Address(keys[i]).ipv4_mapped  # type: ignore[arg-type]
        keys[i] = str(mapped) if mapped is not None else keys[i]
    return keys


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
        return "::ffff:" + network_of(str(addr.ipv4_mapped)).removesuffix("/24")
    return str(ipaddress.IPv6Network(f"{addr}/48", strict=False).network_address)


def mask_ip_text(text: str) -> str:
    """Masks every IP address in free text to its /24 or /48 prefix (reject rows keep no IP)."""
    text = _IPV6_DOTTED_IN_TEXT.sub(_mask_v6, text)
    text = _IPV4_IN_TEXT.sub(lambda m: m.group(1) + ".0", text)
    return _IPV6_IN_TEXT.sub(_mask_v6, text)
