"""Settings: environment variables first, then `dlcdn.toml`, then defaults. Read when asked.

Secrets (`DLCDN_IP_KEY`, `DLCDN_SMTP_PASSWORD`) come only from the environment: a `dlcdn.toml`
holding one is refused, so that a config file can be committed or shared safely.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.geo.privacy import SettingError

SECRETS = ("DLCDN_IP_KEY", "DLCDN_SMTP_PASSWORD")
CONFIG_ENV = "DLCDN_CONFIG"


@dataclass(frozen=True)
class Settings:
    warehouse: Path = Path("warehouse")
    landing: str = "landing"
    geoip_city: Path | None = None
    geoip_country: Path | None = None
    geoip_asn: Path | None = None
    # Abuse investigation only: keeps the client address in `requests.client_ip` and unmasked in
    # rejects. Off by default; the warehouse then holds personal data.
    keep_raw_ip: bool = False
    reject_ratio_max: float = 0.01
    egress_budget_tb: float = 800.0
    # Egress price tiers, `UP_TO_TB:EUR_PER_TB,...,inf:EUR_PER_TB` (pipeline.decisions.budget); None: the
    # placeholder table.
    price_table: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_user: str | None = None
    smtp_tls: str = "starttls"
    report_from: str | None = None
    report_to: tuple[str, ...] = ()
    fastly_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)


_BOOL = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def _bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    try:
        return _BOOL[str(value).strip().lower()]
    except KeyError:
        raise SettingError(f"{name}={value!r}: use true or false") from None


def _number(name: str, value: object, kind: type = float) -> float:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise SettingError(f"{name}={value!r}: not a number") from None
    if number < 0:
        raise SettingError(f"{name}={value!r}: must not be negative")
    return number


def _config_file(env: Mapping[str, str]) -> Path | None:
    if CONFIG_ENV in env:
        path = Path(env[CONFIG_ENV])
        if not path.is_file():
            raise SettingError(f"{CONFIG_ENV}={path}: no such file")
        return path
    path = Path("dlcdn.toml")
    return path if path.is_file() else None


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from `env` (default: the process environment) and the config file."""
    env = dict(os.environ if env is None else env)
    values: dict[str, object] = {}
    path = _config_file(env)
    if path is not None:
        try:
            doc = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise SettingError(f"{path}: cannot read settings ({e})") from None
        for key, value in doc.items():
            if key == "fastly":
                continue
            name = "DLCDN_" + key.upper()
            if name in SECRETS:
                raise SettingError(f"{path}: {key} is a secret; set {name} in the environment only")
            values[name] = value
        keys = doc.get("fastly", {}).get("keys", {})
        values["fastly_keys"] = {
            k: tuple([v] if isinstance(v, str) else v) for k, v in keys.items()
        }
    for name, value in env.items():
        if name.startswith("DLCDN_") and value != "":
            values[name] = value

    def get(name: str) -> object | None:
        return values.get(name)

    def path_or_none(name: str) -> Path | None:
        v = get(name)
        return Path(str(v)).expanduser() if v else None

    tls = str(get("DLCDN_SMTP_TLS") or "starttls").lower()
    if tls not in ("none", "starttls", "ssl"):
        raise SettingError(f"DLCDN_SMTP_TLS={tls!r}: use none, starttls or ssl")
    to_value = get("DLCDN_REPORT_TO") or ()
    if isinstance(to_value, str):
        to_value = to_value.split(",")
    to = tuple(str(a).strip() for a in to_value if str(a).strip())  # type: ignore[attr-defined]
    port = get("DLCDN_SMTP_PORT")
    return Settings(
        warehouse=path_or_none("DLCDN_WAREHOUSE") or Path("warehouse"),
        landing=str(get("DLCDN_LANDING") or "landing"),
        geoip_city=path_or_none("DLCDN_GEOIP_CITY"),
        geoip_country=path_or_none("DLCDN_GEOIP_COUNTRY"),
        geoip_asn=path_or_none("DLCDN_GEOIP_ASN"),
        keep_raw_ip=_bool("DLCDN_KEEP_RAW_IP", get("DLCDN_KEEP_RAW_IP") or False),
        reject_ratio_max=_number("DLCDN_REJECT_RATIO_MAX", get("DLCDN_REJECT_RATIO_MAX") or 0.01),
        egress_budget_tb=_number("DLCDN_EGRESS_BUDGET_TB", get("DLCDN_EGRESS_BUDGET_TB") or 800.0),
        price_table=str(get("DLCDN_PRICE_TABLE")) if get("DLCDN_PRICE_TABLE") else None,
        smtp_host=str(get("DLCDN_SMTP_HOST")) if get("DLCDN_SMTP_HOST") else None,
        smtp_port=int(_number("DLCDN_SMTP_PORT", port, int)) if port else None,
        smtp_user=str(get("DLCDN_SMTP_USER")) if get("DLCDN_SMTP_USER") else None,
        smtp_tls=tls,
        report_from=str(get("DLCDN_REPORT_FROM")) if get("DLCDN_REPORT_FROM") else None,
        report_to=to,
        fastly_keys=values.get("fastly_keys", {}),  # type: ignore[arg-type]
        env=env,
    )
