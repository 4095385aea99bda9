"""A real PostgreSQL server for tests: Debian's binaries, a fresh cluster in a temp folder, on a
free port on 127.0.0.1, password authentication. PostgreSQL refuses to run as root, so under root
the server runs as the `postgres` system user the Debian package creates."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from netutil import free_port


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    password: str

    def env(self, db: str) -> dict[str, str]:
        """The settings deploy/dagster/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": db,
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
        }


def postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL's bin folder (the `postgresql` package), or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4])
    )
    return Path(found[-1]).parent if found else None


@contextlib.contextmanager
def running_postgres(timeout: float = 60) -> Iterator[Postgres]:
    """Starts a throwaway server (initdb, then postgres in the foreground); stops and removes it."""
    bindir = postgres_bin()
    assert bindir is not None, "make test installs Debian's postgresql (make system-deps)"
    run_as: dict[str, object] = {}
    base = Path(tempfile.mkdtemp(prefix="dlcdn-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(base, owner.pw_uid, owner.pw_gid)
        run_as = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
    password = "pg-test-" + os.urandom(8).hex()
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    if run_as:
        os.chown(pwfile, int(run_as["user"]), int(run_as["group"]))  # type: ignore[call-overload]
    data = base / "data"
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-U", "dlcdn", f"--pwfile={pwfile}",
         "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--no-sync"],
        check=True, capture_output=True, timeout=timeout, cwd=base, **run_as,  # type: ignore[arg-type]
    )  # fmt: skip
    port = free_port()
    log = open(base / "server.log", "wb")  # noqa: SIM115 - the server's, closed when it stops
    proc = subprocess.Popen(
        [str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
         "-k", str(base), "-c", "fsync=off", "-c", "full_page_writes=off"],
        stdout=subprocess.DEVNULL, stderr=log,
        cwd=base, start_new_session=True, **run_as,  # type: ignore[arg-type]
    )  # fmt: skip
    server = Postgres("127.0.0.1", port, "dlcdn", password)
    try:
        _wait_ready(server, proc, base, timeout)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # "fast" shutdown: ends the sessions, then exits
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()
        shutil.rmtree(base, ignore_errors=True)


def _wait_ready(
    server: Postgres, proc: subprocess.Popen[bytes], base: Path, timeout: float
) -> None:
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"postgres exited: {(base / 'server.log').read_text()[-2000:]}")
        try:
            psycopg2.connect(
                host=server.host, port=server.port, user=server.user,
                password=server.password, dbname="postgres", connect_timeout=2,
            ).close()  # fmt: skip
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def create_database(server: Postgres, name: str) -> None:
    import psycopg2

    con = psycopg2.connect(
        host=server.host, port=server.port, user=server.user,
        password=server.password, dbname="postgres",
    )  # fmt: skip
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        con.close()
