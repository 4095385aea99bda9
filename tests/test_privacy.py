"""No personal data at rest: hashed client ids, network prefixes, a key kept outside the repo."""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
from pathlib import Path

import polars as pl
import pytest

from pipeline.geo import addresses, privacy
from pipeline.ingest.run import ingest_file
from pipeline.settings import Settings
from pipeline.synthetic.generate import generate
from pipeline.warehouse.store import Warehouse

KEY = b"privacy-test-key-0123456789abcdef"
IPV4 = re.compile(rb"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")


def test_key_is_generated_once_with_0600_and_announced(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    env: dict[str, str] = {}
    first = privacy.load_ip_key(env)
    path = tmp_path / "dlcdn" / "ip_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(path) in capsys.readouterr().err
    assert privacy.load_ip_key(env) == first  # kept, not regenerated
    assert capsys.readouterr().err == ""


def test_key_from_environment_and_too_short(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    a = privacy.load_ip_key({"DLCDN_IP_KEY": "a" * 20})
    assert a != privacy.load_ip_key({"DLCDN_IP_KEY": "b" * 20})
    assert not (tmp_path / "dlcdn" / "ip_key").exists()
    with pytest.raises(privacy.SettingError, match="DLCDN_IP_KEY"):
        privacy.load_ip_key({"DLCDN_IP_KEY": "short"})


@pytest.mark.parametrize(
    ("text", "normal", "net"),
    [
        # rule: IPv4 to /24, IPv6 to /48, IPv4-mapped IPv6 is the IPv4 client
        ("192.0.2.77", "192.0.2.77", "192.0.2.0/24"),
        ("2001:db8:1:2:3::4", "2001:db8:1:2:3::4", "2001:db8:1::/48"),
        ("::ffff:192.0.2.77", "192.0.2.77", "192.0.2.0/24"),
        ("[2001:db8::1]", "2001:db8::1", "2001:db8::/48"),
        # rule: leading zeros are not an address (no octal guesses)
        ("010.0.0.1", "10.0.0.1", "10.0.0.0/24"),
    ],
)
def test_normalise_and_network(text: str, normal: str, net: str) -> None:
    assert addresses.normalise_ip(text) == normal
    assert addresses.network_of(normal) == net


# rule: not an address -> None; ':\x00' (a NUL inside) once crashed inet_pton (found by hypothesis)
@pytest.mark.parametrize(
    "text", ["monitoring-server", "-", "999.1.1.1", "1.2.3", "", ":\x00", "::1\x00"]
)
def test_not_addresses(text: str) -> None:
    assert addresses.normalise_ip(text) is None


def _string_values(root: Path) -> str:
    """Every value of every Parquet file in the warehouse, as text (the files are compressed, so a
    byte grep of them would prove nothing)."""
    out = []
    for f in sorted(root.rglob("*.parquet")):
        df = pl.read_parquet(f, hive_partitioning=False)
        flat = [c for c, t in df.schema.items() if not isinstance(t, pl.List)]
        out.append(df.select(pl.col(flat).cast(pl.String)).write_csv())
    return "\n".join(out)


def test_no_client_address_in_the_warehouse(tmp_path: Path) -> None:
    files = generate(tmp_path / "landing", dt.date(2026, 11, 20), 1, 3000, fmt="combined", seed=3)
    files += generate(tmp_path / "landing", dt.date(2026, 11, 20), 1, 3000, fmt="fastly", seed=4)
    ips: set[str] = set()
    for f in files:
        for line in f.read_bytes().splitlines():
            m = IPV4.search(line)
            if m:
                ips.add(m.group(1).decode())
            if b'"client_ip":"' in line:
                ips.add(line.split(b'"client_ip":"')[1].split(b'"')[0].decode())
    assert len(ips) > 100
    wh = Warehouse(tmp_path / "wh")
    for f in files:
        ingest_file(f, wh, Settings(), ip_key=KEY)
    text = _string_values(wh.root)
    assert "client_net" in text  # the reading found the columns
    # every address-like token in the warehouse; an address ending in .0 followed by "/" is the
    # text of its own /24 prefix, not a leak
    tokens = set(re.findall(r"[0-9a-fA-F:.]*[0-9a-fA-F](?!/)", text))
    leaked = sorted(ips & tokens)
    assert leaked == []


def test_raw_ip_opt_in_keeps_the_address(tmp_path: Path) -> None:
    f = tmp_path / "a.log"
    f.write_text(
        '192.0.2.77 - - [20/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "curl/8"\n'
    )
    wh = Warehouse(tmp_path / "wh")
    ingest_file(f, wh, Settings(keep_raw_ip=True), ip_key=KEY)
    con = wh.connect(read_only=True)
    assert con.sql("SELECT client_ip, client_net FROM requests").fetchall() == [
        ("192.0.2.77", "192.0.2.0/24")
    ]
    con.close()


def test_key_file_is_outside_the_repository(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    repo = Path(__file__).resolve().parents[1]
    assert repo not in privacy.key_file().parents
    assert os.path.isabs(privacy.key_file())
