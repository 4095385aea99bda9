"""`dlcdn demo`: a synthetic week through the real Dagster definitions, in-process.

The landing sensor is evaluated as the daemon would, and every run it asks for is materialized
in this process (a process per step costs seconds of start-up), on the instance in DAGSTER_HOME
when set, so `make dev` shows the demo's runs afterwards.
"""

import datetime as dt
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from assets.definitions import defs
from assets.resources import DlcdnResource
from pipeline import dates
from pipeline.synthetic.generate import generate
from pipeline.warehouse import queries


def demo_week(today: dt.date | None = None) -> dt.date:
    """Monday of the last complete ISO week."""
    return dates.week_start(today or dates.today_utc()) - dt.timedelta(days=7)


def _instance() -> dg.DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def tick(instance: dg.DagsterInstance, dlcdn: DlcdnResource, cursor: str | None) -> dg.SensorResult:
    """One evaluation of the landing sensor; adds the partitions it asks for."""
    sensor = defs.resolve_sensor_def("landing_sensor")
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"dlcdn": dlcdn})
    result = sensor(ctx)
    assert isinstance(result, dg.SensorResult)
    for req in result.dynamic_partitions_requests or []:
        if isinstance(req, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
    return result


def run_requested(
    instance: dg.DagsterInstance,
    dlcdn: DlcdnResource,
    requests: list[dg.RunRequest],
    echo: Callable[[str], None],
) -> list[dg.ExecuteInProcessResult]:
    """Materializes what run requests ask for, in process, stopping at the first failure."""
    results = []
    for req in requests:
        job = defs.resolve_job_def(str(req.job_name))
        result = job.execute_in_process(
            instance=instance,
            partition_key=req.partition_key,
            resources={"dlcdn": dlcdn},
            tags={"dagster/run_key": str(req.run_key), "dlcdn/demo": "true"},
            # the demo prints its own one line per run; Dagster's step events go to the instance
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            raise_on_error=False,
        )
        checks = result.get_asset_check_evaluations()
        failed = [c for c in checks if not c.passed]
        status = "ok" if result.success and not failed else "FAILED"
        note = f", {len(checks) - len(failed)}/{len(checks)} checks passed" if checks else ""
        echo(f"    {job.name} [{req.partition_key}] {status}{note}")
        for c in failed:
            echo(f"      check {c.check_name} failed: {c.description}")
        results.append(result)
        if status != "ok":
            break
    return results


def _all_ok(results: list[dg.ExecuteInProcessResult]) -> bool:
    return all(
        r.success and all(c.passed for c in r.get_asset_check_evaluations()) for r in results
    )


def run_demo(
    base: Path, lines_per_day: int = 20_000, days: int = 28, echo: Callable[[str], None] = print
) -> bool:
    """Generates `days` of logs ending with the last complete ISO week and runs every asset on them
    (four weeks by default: the budget forecast needs two, placement looks at four)."""
    base = base.absolute()
    landing, wh_root = base / "landing", base / "warehouse"
    shutil.rmtree(wh_root, ignore_errors=True)
    shutil.rmtree(landing, ignore_errors=True)
    week = demo_week()
    start = week + dt.timedelta(days=7 - days)
    echo(f"1/4 generating {days} day(s) of SYNTHETIC dl-cdn logs from {start} into {landing}")
    _generate_logs(base, landing, start, days, lines_per_day)
    ok = _run_everything(
        _instance(), DlcdnResource(warehouse=str(wh_root), landing=str(landing)), week, echo
    )
    _show_results(wh_root, week, echo)
    if ok:
        _publish_all(base, wh_root, echo)
    echo(
        "demo "
        + (
            "finished: every asset materialized, every check passed"
            if ok
            else "FAILED: see the runs above"
        )
    )
    return ok


def _generate_logs(
    base: Path, landing: Path, start: dt.date, days: int, lines_per_day: int
) -> None:
    """A Fastly log (gzip) and a mirror log a tenth its size, per day, into the landing folder."""
    generate(landing / "fastly", start, days, lines_per_day, fmt="fastly", seed=1, gzip=True)
    generate(
        landing / "mirror", start, days, max(lines_per_day // 10, 1000), fmt="combined", seed=2
    )
    for sub in (
        "fastly",
        "mirror",
    ):  # the markers are not logs: keep them out of the landing folder
        (landing / sub / "SYNTHETIC.txt").replace(base / f"SYNTHETIC-{sub}.txt")


def _run_everything(
    instance: dg.DagsterInstance, dlcdn: DlcdnResource, week: dt.date, echo: Callable[[str], None]
) -> bool:
    """The sensor's ingest runs, then the day runs it asks for, then the week's: as the daemon and
    the schedules would. Whether every run and check passed."""
    echo("2/4 landing sensor -> ingest runs (requests, with their checks)")
    first = tick(instance, dlcdn, None)
    ok = all(
        r.success for r in run_requested(instance, dlcdn, list(first.run_requests or []), echo)
    )
    echo("3/4 landing sensor -> the days those files touched (daily_traffic, rollups)")
    second = tick(instance, dlcdn, first.cursor)
    daily = [r for r in second.run_requests or [] if r.job_name == "daily_job"]
    ok = ok and _all_ok(run_requested(instance, dlcdn, daily, echo))
    echo(
        f"4/4 the ISO week of {week}: weekly_traffic, mirror_placement, egress_budget, weekly_report(_email), public_dataset"
    )
    weekly = [
        dg.RunRequest(
            run_key=f"demo-week:{week}", partition_key=week.isoformat(), job_name="weekly_job"
        )
    ]
    return ok and _all_ok(run_requested(instance, dlcdn, weekly, echo))


def _show_results(wh_root: Path, week: dt.date, echo: Callable[[str], None]) -> None:
    """The week's traffic by day, and where the warehouse, runs, report and mail are."""
    frame = queries.run(
        wh_root,
        queries.sql_file("traffic_by_day"),
        {"start": week.isoformat(), "end": (week + dt.timedelta(days=6)).isoformat()},
    )
    echo("\n-- sql/traffic_by_day.sql\n" + queries.format_frame(frame))
    echo(f"\nwarehouse:  {wh_root}  (duckdb {wh_root / 'warehouse.duckdb'})")
    if os.environ.get("DAGSTER_HOME"):
        echo(
            f"dagster:    runs recorded in {os.environ['DAGSTER_HOME']}; open the UI with `make dev` (http://127.0.0.1:3000)"
        )
    echo(
        f'try:        DLCDN_WAREHOUSE={wh_root} dlcdn sql "SELECT file_kind, count(*) FROM requests GROUP BY ALL"'
    )
    echo(f"data docs:  {wh_root / 'data_docs' / 'index.html'}  (Great Expectations results)")
    echo(f"decisions:  {wh_root / 'decisions'}  (also: dlcdn placement, dlcdn budget)")
    iso = dates.iso_week(week)
    echo(f"report:     {wh_root / 'reports' / iso / 'report.html'}")
    outbox = (
        "sent"
        if os.environ.get("DLCDN_SMTP_HOST")
        else "no DLCDN_SMTP_HOST set: the outbox is the result"
    )
    echo(f"mail:       {wh_root / 'outbox' / (iso + '.eml')}  ({outbox})")
    echo(
        f"public:     {wh_root / 'public' / iso / 'datapackage.json'}  (the week's public dataset)"
    )


def _publish_all(base: Path, wh_root: Path, echo: Callable[[str], None]) -> None:
    """Every week of the demo as one public dataset, as `dlcdn publish --out base/public` writes it."""
    from pipeline.geo.geoip import GeoIP
    from pipeline.publish.package import publish
    from pipeline.settings import load
    from pipeline.warehouse.store import Warehouse

    s = load()
    with GeoIP.from_settings(s) as geo:
        described = geo.describe()
    out = base / "public"
    p = publish(Warehouse(wh_root), out, k=s.publish_k, force=True, geoip=described)
    rows, dropped = p.summary()["rows"].sum(), p.summary()["rows_dropped"].sum()
    echo(
        f"dataset:    {out / 'datapackage.json'}  (dlcdn publish: {p.start} .. {p.end}, "
        f"k = {p.k}, {rows:,} rows published, {dropped:,} dropped; data sheet {out / 'README.md'})"
    )
