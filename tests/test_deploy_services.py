"""The services (deploy/systemd/) and the login in front of the UI (deploy/nginx/): the units pass
`systemd-analyze verify` and keep secrets out; the environment template loads as dlcdn settings;
Debian's nginx with the shipped site answers 401 without credentials and serves the real Dagster
web server with them, over TLS."""

from __future__ import annotations

import base64
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from netutil import free_port

from pipeline import settings as settings_mod

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent
UNITS = sorted((DEPLOY / "systemd").glob("dlcdn-*.*"))
ENV_FILE = "/etc/dlcdn/dlcdn.env"
# Every secret the services need: none may appear in a unit.
SECRETS = (
    "DLCDN_IP_KEY",
    "DLCDN_SMTP_PASSWORD",
    "DAGSTER_PG_PASSWORD",
    "AWS_SECRET_ACCESS_KEY",
)


def _env_template() -> dict[str, str]:
    out = {}
    for line in (DEPLOY / "systemd" / "dlcdn.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), line
            out[key] = value
    return out


def _directives(unit: Path) -> list[tuple[str, str]]:
    return [
        (k.strip(), v.strip())
        for k, sep, v in (line.partition("=") for line in unit.read_text().splitlines())
        if sep and not k.startswith("#")
    ]


def test_units_read_settings_from_the_environment_file_and_hold_no_secret() -> None:
    assert {u.name for u in UNITS} >= {"dlcdn-webserver.service", "dlcdn-daemon.service"}
    for unit in UNITS:
        text = unit.read_text()
        for secret in SECRETS:
            assert secret not in text, f"{unit.name} names {secret}: secrets go in {ENV_FILE}"
        if unit.suffix == ".service":
            d = dict(_directives(unit))
            assert d["EnvironmentFile"] == ENV_FILE and d["User"] == "dlcdn"
            assert d["ExecStart"].startswith("/opt/dlcdn/.venv/bin/")
    web = dict(_directives(DEPLOY / "systemd" / "dlcdn-webserver.service"))
    assert "--host 127.0.0.1 " in web["ExecStart"]  # the UI has no login: never on a public address
    template = _env_template()
    for secret in SECRETS:
        assert template[secret] == "", f"the template leaves {secret} for the operator to fill in"


def test_the_environment_template_loads_as_dlcdn_settings() -> None:
    template = _env_template()
    filled = {k: v or "x" * 20 for k, v in template.items() if k.startswith("DLCDN_")}
    for optional in ("DLCDN_GEOIP_CITY", "DLCDN_GEOIP_COUNTRY", "DLCDN_GEOIP_ASN"):
        filled[optional] = ""  # empty means the embedded default database
    filled["DLCDN_REPORT_TO"] = "infra@example.org"
    s = settings_mod.load(filled)
    assert str(s.warehouse) == "/var/lib/dlcdn/warehouse"
    assert s.landing.startswith("s3://") and s.smtp_port == 587 and s.egress_budget_tb == 800
    # every DLCDN_ name in the template is a setting dlcdn has (or one of its two secrets)
    names = {k.removeprefix("DLCDN_").lower() for k in template if k.startswith("DLCDN_")}
    assert names - {"ip_key", "smtp_password"} <= set(dir(s))
    dagster = (DEPLOY / "dagster" / "dagster.yaml").read_text()
    assert set(re.findall(r"\{env: (\w+)\}", dagster)) <= set(template)


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd; make system-deps)")
    # The units name the installed paths; here they point at this checkout and a copy of the
    # template, which verify needs to exist.
    env_file = tmp_path / "dlcdn.env"
    shutil.copy(DEPLOY / "systemd" / "dlcdn.env.example", env_file)
    for unit in UNITS:
        text = unit.read_text().replace("/opt/dlcdn", str(REPO)).replace(ENV_FILE, str(env_file))
        (tmp_path / unit.name).write_text(text)
    out = subprocess.run(
        [analyze, "verify", "--man=no", *(str(tmp_path / u.name) for u in UNITS)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    ours = [line for line in out.stderr.splitlines() if "dlcdn" in line]
    assert out.returncode == 0 and not ours, out.stderr


# --- nginx in front of the real web server ---------------------------------------------------


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def webserver(tmp_path: Path) -> Iterator[int]:
    """The real Dagster web server on 127.0.0.1, as the unit starts it."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home)
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "DLCDN_WAREHOUSE": str(tmp_path / "wh")}
    proc = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "--host", "127.0.0.1", "--port", str(port),
         "-m", "assets.definitions"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=_default_signals, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "dagster-webserver did not answer in 120 s"
                time.sleep(0.5)
        yield port
    finally:
        _stop(proc)


def _nginx() -> str:
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    assert exe, "make test installs Debian's nginx (make system-deps)"
    return exe


def _site(tmp_path: Path, http_port: int, https_port: int, upstream: int) -> str:
    """The shipped site with this test's ports, certificate and password file. Each replaced
    string must be in the file, so the test follows the shipped configuration, not a copy."""
    text = (DEPLOY / "nginx" / "dlcdn.conf").read_text()
    swaps = {
        "    listen [::]:80;\n": "",  # no IPv6 needed here
        "    listen [::]:443 ssl http2;\n": "",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "/etc/letsencrypt/live/dlcdn.example.org/fullchain.pem": str(tmp_path / "cert.pem"),
        "/etc/letsencrypt/live/dlcdn.example.org/privkey.pem": str(tmp_path / "key.pem"),
        "/etc/nginx/dlcdn.htpasswd": str(tmp_path / "htpasswd"),
        "http://127.0.0.1:3000": f"http://127.0.0.1:{upstream}",
    }
    for old, new in swaps.items():
        assert old in text, f"deploy/nginx/dlcdn.conf no longer has {old!r}"
        text = text.replace(old, new)
    return text


@pytest.fixture
def nginx(tmp_path: Path, webserver: int) -> Iterator[tuple[int, int, Path]]:
    """Debian's nginx in the foreground, with a temp prefix, the shipped site, a self-signed
    certificate and a password file made as the site's comment says."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=dlcdn.test", "-addext", "subjectAltName=DNS:dlcdn.test,IP:127.0.0.1",
         "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    hashed = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"],
        input="correct horse battery", capture_output=True, text=True, check=True, timeout=30,
    ).stdout.strip()  # fmt: skip
    (tmp_path / "htpasswd").write_text(f"maintainer:{hashed}\n")
    http_port, https_port = free_port(), free_port()
    (tmp_path / "site.conf").write_text(_site(tmp_path, http_port, https_port, webserver))
    for d in ("logs", "temp"):
        (tmp_path / d).mkdir()
    user = pwd.getpwuid(os.geteuid()).pw_name
    (tmp_path / "nginx.conf").write_text(
        f"user {user};\n"  # workers as this user (the master runs as it too when not root)
        "worker_processes 1;\n"
        f"pid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/logs/error.log warn;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        f"  access_log {tmp_path}/logs/access.log;\n"
        + "".join(
            f"  {kind}_temp_path {tmp_path}/temp/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + f"  include {tmp_path}/site.conf;\n"
        "}\n"
    )
    nginx_bin = _nginx()
    conf = ["-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    check = subprocess.run([nginx_bin, "-t", *conf], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(
        [nginx_bin, *conf, "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        preexec_fn=_default_signals, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket_to(https_port):
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "nginx did not listen in 30 s"
                time.sleep(0.2)
        yield http_port, https_port, tmp_path / "cert.pem"
    finally:
        _stop(proc)


def socket_to(port: int):  # type: ignore[no-untyped-def]
    import socket

    return socket.create_connection(("127.0.0.1", port), timeout=2)


def _get(
    port: int,
    cafile: Path,
    path: str,
    auth: tuple[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    ctx = ssl.create_default_context(cafile=str(cafile))  # verifies the certificate and the name
    con = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
    headers = {"Host": "dlcdn.test"}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        con.request("POST" if body is not None else "GET", path, body=body, headers=headers)
        r = con.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        con.close()


@pytest.mark.slow
def test_nginx_asks_for_a_password_then_serves_the_ui(nginx: tuple[int, int, Path]) -> None:
    http_port, https_port, cafile = nginx
    good = ("maintainer", "correct horse battery")

    status, headers, _ = _get(https_port, cafile, "/")
    assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="dlcdn"'
    assert _get(https_port, cafile, "/", auth=("maintainer", "wrong"))[0] == 401
    assert _get(https_port, cafile, "/graphql", body=b'{"query":"{version}"}')[0] == 401

    status, _, page = _get(https_port, cafile, "/", auth=good)
    assert status == 200 and re.search(rb"<title[^>]*>Dagster</title>", page)
    status, _, info = _get(https_port, cafile, "/server_info", auth=good)
    assert status == 200 and "dagster_webserver_version" in json.loads(info)
    # the UI's API, through the proxy: it sees dlcdn's definitions
    query = b'{"query":"{ assetNodes { assetKey { path } } }"}'
    status, _, answer = _get(https_port, cafile, "/graphql", auth=good, body=query)
    keys = {tuple(n["assetKey"]["path"]) for n in json.loads(answer)["data"]["assetNodes"]}
    assert status == 200 and {("requests",), ("daily_traffic",)} <= keys

    # plain HTTP only redirects to HTTPS
    con = http.client.HTTPConnection("127.0.0.1", http_port, timeout=30)
    con.request("GET", "/runs", headers={"Host": "dlcdn.test"})
    r = con.getresponse()
    assert r.status == 301 and r.getheader("Location") == "https://dlcdn.test/runs"
    con.close()
