"""The landing sensor: new or grown files trigger ingest, and the days they touch re-aggregate.

Cursor (JSON): the size, mtime and fingerprint of every landing file seen, so unchanged files cost
a stat; and the newest manifest `ingested_at` already turned into day re-runs.
"""

import datetime as dt
import json

import dagster as dg
import polars as pl

from assets.defs.jobs import daily_job, ingest_job, weekly_job
from assets.defs.partitions import landing_files
from assets.resources import DlcdnResource
from pipeline import dates

CHECK = dg.AssetCheckKey(dg.AssetKey("requests"), "requests_quality")
_CHECK_EVENTS = {
    dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
}


@dg.sensor(
    jobs=[ingest_job, daily_job, weekly_job],
    minimum_interval_seconds=30,
    description="Watches DLCDN_LANDING: run key = file fingerprint (a duplicate under another name "
    "triggers nothing, a grown file runs again); re-aggregates the days and past weeks that newly "
    "ingested files touched.",
)
def landing_sensor(context: dg.SensorEvaluationContext, dlcdn: DlcdnResource) -> dg.SensorResult:
    state = json.loads(context.cursor) if context.cursor else {}
    seen: dict[str, list] = state.get("files", {})
    manifest = dlcdn.open_warehouse().current_manifest()
    known = set(context.instance.get_dynamic_partitions(landing_files.name))
    run_requests, new_partitions = _ingest_requests(dlcdn, seen, manifest, known)
    run_requests += _aggregate_requests(context, state, seen, manifest)
    state["files"] = seen
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[landing_files.build_add_request(new_partitions)]
        if new_partitions
        else [],
        cursor=json.dumps(state, sort_keys=True),
    )


def _ingest_requests(
    dlcdn: DlcdnResource, seen: dict[str, list], manifest: pl.DataFrame, known: set[str]
) -> tuple[list[dg.RunRequest], list[str]]:
    """An ingest run for every landing file that is new or changed since it was last seen (and
    whose content is not in the warehouse), and the partitions to add for them. Updates `seen`."""
    landing = dlcdn.landing_location()
    ingested = set(manifest["file_id"].to_list())
    run_requests: list[dg.RunRequest] = []
    new_partitions: list[str] = []
    fingerprints_this_tick: set[str] = set()
    for f in landing.files():
        rel = f.rel
        previous = seen.get(rel)
        if previous and previous[0] == f.size and previous[1] == f.mtime_ns:
            continue
        fingerprint = landing.fingerprint(rel)
        seen[rel] = [f.size, f.mtime_ns, fingerprint]
        if fingerprint in ingested or fingerprint in fingerprints_this_tick:
            continue  # the same content is (or is about to be) in the warehouse
        fingerprints_this_tick.add(fingerprint)
        if rel not in known:
            new_partitions.append(rel)
        run_requests.append(
            dg.RunRequest(
                run_key=f"ingest:{fingerprint}", partition_key=rel, job_name=ingest_job.name
            )
        )
    return run_requests, new_partitions


def _aggregate_requests(
    context: dg.SensorEvaluationContext,
    state: dict[str, object],
    seen: dict[str, list],
    manifest: pl.DataFrame,
) -> list[dg.RunRequest]:
    """Runs for the days (and finished ISO weeks) that files ingested since the last tick touched,
    leaving out the files whose check failed. Moves the cursor's `ingested_after` past them."""
    since = state.get("ingested_after")
    fresh = (
        manifest
        if since is None
        else manifest.filter(manifest["ingested_at"] > dt.datetime.fromisoformat(str(since)))
    )
    held = _failed_checks(context.instance, seen, set(fresh["file_id"].to_list()))
    if held:
        context.log.warning(
            f"not re-aggregating the days of {len(held)} file(s) whose requests_quality check "
            f"failed: {', '.join(sorted(held))}"
        )
        fresh = fresh.filter(~fresh["file_id"].is_in(list(held)))
    if fresh.is_empty():
        return []
    newest = fresh["ingested_at"].max()
    today = dates.today_utc()
    this_week = dates.week_start(today)
    # Days that have ended (today's partition exists tomorrow, when the daily schedule builds
    # it) and ISO weeks that have ended (the Monday schedule builds the last one).
    days = sorted({d for ds in fresh["dates"].to_list() for d in ds if d < today})
    weeks = sorted({dates.week_start(d) for d in days if d < this_week})
    tag = newest.isoformat()  # type: ignore[union-attr]
    state["ingested_after"] = tag
    return [
        dg.RunRequest(
            run_key=f"daily:{d}:{tag}", partition_key=d.isoformat(), job_name=daily_job.name
        )
        for d in days
    ] + [
        dg.RunRequest(
            run_key=f"weekly:{w}:{tag}", partition_key=w.isoformat(), job_name=weekly_job.name
        )
        for w in weeks
    ]


def _failed_checks(
    instance: dg.DagsterInstance, seen: dict[str, list], file_ids: set[str]
) -> set[str]:
    """The landing files (of these file_ids) whose latest requests_quality check failed: a file
    that fails its blocking check must not flow into the day aggregates and the report."""
    return {
        fingerprint
        for rel, (_, _, fingerprint) in seen.items()
        if fingerprint in file_ids and _latest_check_failed(instance, rel)
    }


def _latest_check_failed(instance: dg.DagsterInstance, partition: str) -> bool:
    """Whether the latest requests_quality check of a landing-file partition failed: the newest
    run of the partition that planned the check decides (one still running has not failed)."""
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": partition}))
    for run in runs:
        planned, passed = False, None
        for entry in instance.all_logs(run.run_id, of_type=_CHECK_EVENTS):
            event = entry.dagster_event
            if event is None:
                continue
            if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
                planned = planned or event.asset_check_planned_data.asset_check_key == CHECK
            elif event.asset_check_evaluation_data.asset_check_key == CHECK:
                passed = event.asset_check_evaluation_data.passed
        if passed is not None:
            return not passed
        if planned:
            return False
    return False
