"""`dlcdn verify` and the daily check that runs it: a real warehouse, damaged in the ways disks and
people damage one, each problem named with its file and exit status 1."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from click.testing import CliRunner

from assets.cli import main
from pipeline.ingest.run import ingest_file
from pipeline.settings import Settings
from pipeline.warehouse.store import Warehouse
from pipeline.warehouse.verify import verify

REPO = Path(__file__).resolve().parents[1]
KEY = b"verify-test-key-0123456789abcdef"
DAY = dt.date(2026, 11, 16)


def _log(day: dt.date, n: int, garbage: int = 0) -> bytes:
    lines = [
        f"198.51.100.{i % 200} - - [{day:%d/%b/%Y}:10:{i // 60 % 60:02d}:{i % 60:02d} +0000] "
        f'"GET /alpine/v3.22/main/x86_64/p{i}-1.0-r0.apk HTTP/1.1" 200 {i} "-" "libfetch/2.0"\n'
        for i in range(n)
    ]
    return "".join(lines + ["this is not a log line\n"] * garbage).encode()


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    """Two logs: one of two days with a reject each day, one of a single day."""
    wh = Warehouse(tmp_path / "wh")
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(_log(DAY, 300, 1) + _log(DAY + dt.timedelta(days=1), 200, 1))
    b.write_bytes(_log(DAY, 100))
    for f in (a, b):
        ingest_file(f, wh, Settings(), ip_key=KEY)
    return wh


def _requests_file(wh: Warehouse, name: str = "a.log", day: dt.date = DAY) -> Path:
    file_id = wh.manifest().filter(pl.col("name") == name)["file_id"][0]
    return wh.root / "requests" / f"date={day}" / f"{file_id}.parquet"


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _drop_a_row(path: Path) -> None:
    pl.read_parquet(path, hive_partitioning=False).slice(1).write_parquet(path)


def _cli(wh: Warehouse, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["verify", *args], env={"DLCDN_WAREHOUSE": str(wh.root)})


def test_an_intact_warehouse_verifies(wh: Warehouse) -> None:
    v = verify(wh)
    assert v.ok and v.problems == [] and v.without_checksum == []
    # a.log: requests and rejects on two days; b.log: requests on one
    assert (v.logs, v.files) == (2, 5)
    out = _cli(wh)
    assert out.exit_code == 0, out.output
    assert "5 Parquet file(s) of 2 ingested log(s): all as the manifest recorded them" in out.output


# Each damage, and what verify must say about the damaged file.
DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "flipped byte": (_flip_a_byte, "its content differs from the checksum recorded at commit"),
    "deleted": (Path.unlink, "missing"),
    "truncated": (_truncate, "cannot be read as Parquet"),
    "rewritten a row short": (_drop_a_row, "holds 299 rows, the manifest recorded 300"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damage_to_a_file_is_named_with_the_file(wh: Warehouse, damage: str) -> None:
    harm, expected = DAMAGE[damage]
    target = _requests_file(wh)
    rel = target.relative_to(wh.root).as_posix()
    harm(target)

    v = verify(wh)
    assert not v.ok
    assert [p.path for p in v.problems] == [rel]
    assert expected in v.problems[0].what and "a.log" in v.problems[0].what
    out = _cli(wh)
    assert out.exit_code == 1
    assert f"{rel}: " in out.output and expected in out.output
    assert "1 problem(s)" in out.output


def test_a_stray_file_is_named(wh: Warehouse) -> None:
    stray = wh.root / "requests" / f"date={DAY}" / "0123456789abcdef01234567.parquet"
    shutil.copy(_requests_file(wh, "b.log"), stray)
    (wh.root / "rejects" / "notes.txt").write_text("not a partition\n")
    out = _cli(wh)
    assert out.exit_code == 1
    assert f"requests/date={DAY}/0123456789abcdef01234567.parquet: stray" in out.output
    assert "rejects/notes.txt: stray" in out.output


def test_a_day_is_verified_alone(wh: Warehouse) -> None:
    _flip_a_byte(_requests_file(wh, "a.log", DAY + dt.timedelta(days=1)))
    assert verify(wh, [DAY]).ok
    other = verify(wh, [DAY + dt.timedelta(days=1)])
    assert (other.logs, other.files) == (1, 2) and len(other.problems) == 1
    assert _cli(wh, "--date", str(DAY)).exit_code == 0
    assert _cli(wh, "--date", str(DAY + dt.timedelta(days=1))).exit_code == 1


# A warehouse from before checksums were recorded (manifest rows without `files`): verify says
# which files it could not check against a checksum, and still finds missing or unreadable ones.
def test_a_manifest_without_checksums_is_said_so(wh: Warehouse) -> None:
    for f in (wh.root / "ingested_files").glob("*.parquet"):
        pl.read_parquet(f).drop("files").write_parquet(f)
    v = verify(wh)
    assert v.ok and len(v.without_checksum) == 5
    out = _cli(wh)
    assert out.exit_code == 0
    assert "note: 5 file(s) were written before checksums were recorded" in out.output
    _truncate(_requests_file(wh, "b.log"))
    v = verify(wh)
    assert [p.path for p in v.problems] == [
        _requests_file(wh, "b.log").relative_to(wh.root).as_posix()
    ]
    assert "cannot be read as Parquet" in v.problems[0].what


def test_no_warehouse_is_a_one_line_error(tmp_path: Path) -> None:
    out = CliRunner().invoke(main, ["verify"], env={"DLCDN_WAREHOUSE": str(tmp_path / "none")})
    assert out.exit_code == 2 and "no warehouse here" in out.output


def test_the_daily_check_fails_on_a_damaged_file_of_its_day(
    wh: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assets.defs.checks import daily_files_intact
    from assets.defs.traffic import daily_traffic
    from assets.resources import DlcdnResource

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DLCDN_IP_KEY", KEY.decode())
    instance = dg.DagsterInstance.get()
    run = dict(
        instance=instance,
        resources={"dlcdn": DlcdnResource(warehouse=str(wh.root), landing=str(tmp_path))},
        partition_key=DAY.isoformat(),
    )
    good = dg.materialize([daily_traffic, daily_files_intact], **run)
    (evaluation,) = good.get_asset_check_evaluations()
    assert evaluation.passed and evaluation.metadata["files"].value == 3

    target = _requests_file(wh, "b.log")
    _flip_a_byte(target)
    bad = dg.materialize([daily_traffic, daily_files_intact], raise_on_error=False, **run)
    (evaluation,) = bad.get_asset_check_evaluations()
    assert not evaluation.passed
    assert target.relative_to(wh.root).as_posix() in evaluation.metadata["problems"].value
    instance.dispose()


# docs/deploy.md's remedy: ingesting the log again (--force) rewrites its files and checksums.
def test_ingesting_the_log_again_repairs_what_verify_found(wh: Warehouse, tmp_path: Path) -> None:
    target = _requests_file(wh)
    _flip_a_byte(target)
    assert not verify(wh).ok
    ingest_file(tmp_path / "a.log", wh, Settings(), ip_key=KEY, force=True)
    v = verify(wh)
    assert v.ok and (v.logs, v.files) == (2, 5)
