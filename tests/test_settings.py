"""Settings: environment first, then dlcdn.toml, then defaults; one-line errors naming the setting;
secrets only from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.geo.privacy import SettingError
from pipeline.settings import Settings, load


@pytest.fixture(autouse=True)
def _no_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # load() reads ./dlcdn.toml: run in an empty folder so that only the test's values count.
    monkeypatch.chdir(tmp_path)


def test_defaults_when_nothing_is_set() -> None:
    s = load({})
    assert s.warehouse == Path("warehouse")
    assert s.landing == "landing"
    assert (s.geoip_city, s.geoip_country, s.geoip_asn) == (None, None, None)
    assert s.keep_raw_ip is False
    assert s.reject_ratio_max == 0.01
    assert s.egress_budget_tb == 800.0
    assert s.price_table is None
    assert (s.smtp_host, s.smtp_port, s.smtp_user, s.smtp_tls) == (None, None, None, "starttls")
    assert (s.report_from, s.report_to) == (None, ())
    assert dict(s.fastly_keys) == {}
    # Settings() is the defaults, whatever the environment holds: only load() reads it.
    assert Settings() == s


def test_environment_values_are_typed() -> None:
    s = load(
        {
            "DLCDN_WAREHOUSE": "~/wh",
            "DLCDN_LANDING": "s3://bucket/logs",
            "DLCDN_GEOIP_ASN": "/data/asn.mmdb",
            "DLCDN_KEEP_RAW_IP": "Yes",
            "DLCDN_REJECT_RATIO_MAX": "0.5",
            "DLCDN_EGRESS_BUDGET_TB": "1200",
            "DLCDN_PRICE_TABLE": "inf:20",
            "DLCDN_SMTP_HOST": "mail.example.org",
            "DLCDN_SMTP_PORT": "2525",
            "DLCDN_SMTP_USER": "dlcdn",
            "DLCDN_SMTP_TLS": "SSL",
            "DLCDN_REPORT_FROM": "dlcdn@example.org",
            "DLCDN_REPORT_TO": "a@example.org, b@example.org,,",
            "DLCDN_UNKNOWN_THING": "ignored",
        }
    )
    assert s.warehouse == Path("~/wh").expanduser()
    assert s.landing == "s3://bucket/logs"
    assert s.geoip_asn == Path("/data/asn.mmdb")
    assert s.keep_raw_ip is True
    assert (s.reject_ratio_max, s.egress_budget_tb) == (0.5, 1200.0)
    assert s.price_table == "inf:20"
    assert (s.smtp_host, s.smtp_port, s.smtp_user, s.smtp_tls) == (
        "mail.example.org",
        2525,
        "dlcdn",
        "ssl",
    )
    assert s.report_to == ("a@example.org", "b@example.org")


def test_environment_wins_over_the_file_which_wins_over_defaults(tmp_path: Path) -> None:
    (tmp_path / "dlcdn.toml").write_text(
        'warehouse = "from-file"\nlanding = "landing-from-file"\nreport_to = ["x@example.org"]\n'
        'egress_budget_tb = 500\n\n[fastly.keys]\npop = "dc"\nstatus = ["code", "status"]\n'
    )
    s = load({"DLCDN_WAREHOUSE": "from-env", "DLCDN_LANDING": ""})
    assert s.warehouse == Path("from-env")
    assert s.landing == "landing-from-file"  # an empty variable counts as unset
    assert s.report_to == ("x@example.org",)
    assert s.egress_budget_tb == 500.0
    assert dict(s.fastly_keys) == {"pop": ("dc",), "status": ("code", "status")}


def test_config_file_named_by_dlcdn_config(tmp_path: Path) -> None:
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text('smtp_host = "mx.example.org"\nsmtp_port = 587\nkeep_raw_ip = true\n')
    s = load({"DLCDN_CONFIG": str(cfg)})
    assert (s.smtp_host, s.smtp_port, s.keep_raw_ip) == ("mx.example.org", 587, True)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        # Each bad value gets one line that names the setting and says what to use.
        ({"DLCDN_KEEP_RAW_IP": "maybe"}, "DLCDN_KEEP_RAW_IP='maybe': use true or false"),
        ({"DLCDN_REJECT_RATIO_MAX": "lots"}, "DLCDN_REJECT_RATIO_MAX='lots': not a number"),
        ({"DLCDN_EGRESS_BUDGET_TB": "-1"}, "DLCDN_EGRESS_BUDGET_TB='-1': must not be negative"),
        ({"DLCDN_SMTP_PORT": "smtp"}, "DLCDN_SMTP_PORT='smtp': not a number"),
        ({"DLCDN_SMTP_PORT": "-25"}, "DLCDN_SMTP_PORT='-25': must not be negative"),
        ({"DLCDN_SMTP_TLS": "TLS1.3"}, "DLCDN_SMTP_TLS='tls1.3': use none, starttls or ssl"),
        ({"DLCDN_CONFIG": "/no/such/dlcdn.toml"}, "DLCDN_CONFIG=/no/such/dlcdn.toml: no such file"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_setting(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingError) as err:
        load(env)
    assert str(err.value) == message


def test_bad_values_in_the_file_name_the_setting(tmp_path: Path) -> None:
    (tmp_path / "dlcdn.toml").write_text("egress_budget_tb = -5\n")
    with pytest.raises(SettingError) as err:
        load({})
    assert str(err.value) == "DLCDN_EGRESS_BUDGET_TB=-5: must not be negative"


def test_an_unreadable_config_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "dlcdn.toml").write_text("warehouse = \n")
    with pytest.raises(SettingError) as err:
        load({})
    assert str(err.value).startswith("dlcdn.toml: cannot read settings (")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("key", ["ip_key", "smtp_password"])
def test_secrets_are_refused_in_the_file(tmp_path: Path, key: str) -> None:
    (tmp_path / "dlcdn.toml").write_text(f'{key} = "hunter2hunter2hunter2"\n')
    with pytest.raises(SettingError) as err:
        load({})
    name = "DLCDN_" + key.upper()
    assert str(err.value) == f"dlcdn.toml: {key} is a secret; set {name} in the environment only"


def test_secrets_from_the_environment_are_kept_out_of_repr() -> None:
    s = load({"DLCDN_SMTP_PASSWORD": "hunter2hunter2", "DLCDN_IP_KEY": "k" * 20})
    assert "hunter2hunter2" not in repr(s) and "k" * 20 not in repr(s)
    assert s.smtp_password is not None and s.smtp_password.get_secret_value() == "hunter2hunter2"
    assert s.ip_key is not None and s.ip_key.get_secret_value() == "k" * 20
