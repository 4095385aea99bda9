"""Settings: environment variables first, then `dlcdn.toml`, then defaults. Read when asked.

`Settings` declares every setting once, with its type and default (pydantic-settings); `load()`
fills it from `DLCDN_<NAME>` variables and the config file (`DLCDN_CONFIG`, else `./dlcdn.toml`,
whose keys are the names without the prefix). An empty variable counts as unset. A bad value is a
`SettingError` of one line naming the setting.

Secrets (`DLCDN_IP_KEY`, `DLCDN_SMTP_PASSWORD`) come only from the environment: a `dlcdn.toml`
holding one is refused, so that a config file can be committed or shared safely.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from pipeline.geo.privacy import SettingError

PREFIX = "DLCDN_"
CONFIG_ENV = "DLCDN_CONFIG"
CONFIG_FILE = Path("dlcdn.toml")
# The monthly egress budget: about what Alpine's CDN serves in a month.
DEFAULT_EGRESS_BUDGET_TB = 800.0

NonNegativeFloat = Annotated[float, Field(ge=0)]


def env_name(field: str) -> str:
    """The environment variable of a setting: `smtp_host` -> `DLCDN_SMTP_HOST`."""
    return PREFIX + field.upper()


class Settings(BaseSettings):
    """Every dlcdn setting, typed, with its default. `Settings(...)` holds exactly what it is
    given (tests build it directly); `load()` reads the environment and the config file."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    warehouse: Path = Path("warehouse")
    # A folder or an object-store URI (pipeline.ingest.landing).
    landing: str = "landing"
    geoip_city: Path | None = None
    geoip_country: Path | None = None
    geoip_asn: Path | None = None
    # Abuse investigation only: keeps the client address in `requests.client_ip` and unmasked in
    # rejects. Off by default; the warehouse then holds personal data.
    keep_raw_ip: bool = False
    reject_ratio_max: NonNegativeFloat = 0.01
    egress_budget_tb: NonNegativeFloat = DEFAULT_EGRESS_BUDGET_TB
    # Egress price tiers, `UP_TO_TB:EUR_PER_TB,...,inf:EUR_PER_TB` (pipeline.decisions.budget);
    # None: the placeholder table.
    price_table: str | None = None
    smtp_host: str | None = None
    # None: the TLS mode's port (pipeline.report.mail.DEFAULT_PORTS).
    smtp_port: Annotated[int, Field(ge=0)] | None = None
    smtp_user: str | None = None
    smtp_tls: Literal["none", "starttls", "ssl"] = "starttls"
    report_from: str | None = None
    report_to: tuple[str, ...] = ()
    # The public dataset's threshold: every published row counts at least this many distinct
    # clients (dlcdn publish --k overrides it; the weekly public_dataset asset uses it).
    publish_k: Annotated[int, Field(ge=2)] = 10
    # Fastly JSON key names per field (`[fastly.keys]` in dlcdn.toml), see pipeline.ingest.formats.
    fastly_keys: Mapping[str, tuple[str, ...]] = Field(default_factory=dict)
    # Secrets: environment only. Without DLCDN_IP_KEY a key is generated once (geo.privacy).
    ip_key: SecretStr | None = None
    smtp_password: SecretStr | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    @field_validator("warehouse", "geoip_city", "geoip_country", "geoip_asn", mode="after")
    @classmethod
    def _expand_user(cls, path: Path | None) -> Path | None:
        return path.expanduser() if path is not None else None

    @field_validator("keep_raw_ip", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    @field_validator("smtp_tls", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return str(value).lower()

    @field_validator("report_to", mode="before")
    @classmethod
    def _addresses(cls, value: object) -> object:
        """A comma-separated string (the environment) or a list (the file); blanks dropped."""
        items = value.split(",") if isinstance(value, str) else value
        if isinstance(items, list | tuple):
            return tuple(str(a).strip() for a in items if str(a).strip())
        return items

    @field_validator("fastly_keys", mode="before")
    @classmethod
    def _key_lists(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return {k: (v,) if isinstance(v, str) else tuple(v) for k, v in value.items()}
        return value


# The settings a config file must not hold.
SECRETS = ("ip_key", "smtp_password")


class _Variables(PydanticBaseSettingsSource):
    """`DLCDN_<NAME>` variables of a mapping (the process environment, or one a caller passes)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        value = self.env.get(env_name(field_name))
        return (value if value != "" else None), field_name, False

    def __call__(self) -> dict[str, Any]:
        values = {}
        for name, field in self.settings_cls.model_fields.items():
            value, _, _ = self.get_field_value(field, name)
            if value is not None:
                values[name] = value
        return values


def _config_file(env: Mapping[str, str]) -> Path | None:
    if CONFIG_ENV in env:
        path = Path(env[CONFIG_ENV])
        if not path.is_file():
            raise SettingError(f"{CONFIG_ENV}={path}: no such file")
        return path
    return CONFIG_FILE if CONFIG_FILE.is_file() else None


def _file_values(path: Path) -> dict[str, Any]:
    """The settings a config file holds; a secret in it is refused, an empty value is unset."""
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SettingError(f"{path}: cannot read settings ({e})") from None
    values: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "fastly":
            values["fastly_keys"] = value.get("keys", {})
            continue
        if key in SECRETS:
            raise SettingError(
                f"{path}: {key} is a secret; set {env_name(key)} in the environment only"
            )
        if value != "":
            values[key] = value
    return values


# pydantic's error types, as the one-line reasons users have always been given.
_REASONS = {
    "bool_parsing": "use true or false",
    "bool_type": "use true or false",
    "float_parsing": "not a number",
    "float_type": "not a number",
    "int_parsing": "not a number",
    "int_type": "not a number",
    "int_from_float": "not a number",
    "greater_than_equal": "must not be negative",
}


def _one_line(error: ValidationError) -> SettingError:
    """The first problem pydantic found, as `DLCDN_NAME=value: what to do`."""
    first = error.errors()[0]
    name = env_name(str(first["loc"][0]))
    if first["type"] == "literal_error":
        reason = "use " + str(first.get("ctx", {}).get("expected", "")).replace("'", "")
    else:
        reason = _REASONS.get(first["type"], first["msg"])
    return SettingError(f"{name}={first['input']!r}: {reason}")


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from `env` (default: the process environment) and the config file."""
    env = dict(os.environ if env is None else env)
    path = _config_file(env)
    sources: list[PydanticBaseSettingsSource] = [_Variables(Settings, env)]
    if path is not None:
        sources.append(InitSettingsSource(Settings, init_kwargs=_file_values(path)))
    try:
        return Settings(_build_sources=(tuple(sources), {}))
    except ValidationError as e:
        raise _one_line(e) from None
