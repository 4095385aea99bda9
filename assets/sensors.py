"""The landing sensor: new or grown files trigger ingest, and the days they touch re-aggregate.

Cursor (JSON): the size, mtime and fingerprint of every landing file seen, so unchanged files cost
a stat; and the newest manifest `ingested_at` already turned into day re-runs.
"""

import datetime as dt
import json

import dagster as dg

from assets.jobs import daily_job, ingest_job, weekly_job
from assets.partitions import landing_files
from assets.resources import DlcdnResource
from pipeline import dates

CHECK = dg.AssetCheckKey(dg.AssetKey("requests"), "requests_quality")


def _failed_checks(
    instance: dg.DagsterInstance, seen: dict[str, list], file_ids: set[str]
) -> set[str]:
    """The landing files (of these file_ids) whose latest requests_quality check failed: a file
    that fails its blocking check must not flow into the day aggregates and the report."""
    # Dagster 1.13 has no public call for a partition's latest check result; these are the
    # event-log storage's own types.
    from dagster._core.event_api import PartitionKeyFilter
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    held = set()
    for rel, (_, _, fingerprint) in seen.items():
        if fingerprint not in file_ids:
            continue
        records = instance.event_log_storage.get_asset_check_execution_history(
            CHECK, limit=1, partition_filter=PartitionKeyFilter(key=rel)
        )
        if records and records[0].status == AssetCheckExecutionRecordStatus.FAILED:
            held.add(fingerprint)
    return held


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
    landing = dlcdn.landing_location()
    wh = dlcdn.open_warehouse()
    manifest = wh.current_manifest()
    ingested = set(manifest["file_id"].to_list())
    known = set(context.instance.get_dynamic_partitions(landing_files.name))

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

    # Days (and finished ISO weeks) touched by files ingested since the last tick.
    since = state.get("ingested_after")
    fresh = (
        manifest
        if since is None
        else manifest.filter(manifest["ingested_at"] > dt.datetime.fromisoformat(since))
    )
    held = _failed_checks(context.instance, seen, set(fresh["file_id"].to_list()))
    if held:
        context.log.warning(
            f"not re-aggregating the days of {len(held)} file(s) whose requests_quality check "
            f"failed: {', '.join(sorted(held))}"
        )
        fresh = fresh.filter(~fresh["file_id"].is_in(list(held)))
    if not fresh.is_empty():
        newest = fresh["ingested_at"].max()
        today = dates.today_utc()
        this_week = dates.week_start(today)
        # Days that have ended (today's partition exists tomorrow, when the daily schedule builds
        # it) and ISO weeks that have ended (the Monday schedule builds the last one).
        days = sorted({d for ds in fresh["dates"].to_list() for d in ds if d < today})
        weeks = sorted({dates.week_start(d) for d in days if d < this_week})
        tag = newest.isoformat()  # type: ignore[union-attr]
        run_requests += [
            dg.RunRequest(
                run_key=f"daily:{d}:{tag}", partition_key=d.isoformat(), job_name=daily_job.name
            )
            for d in days
        ]
        run_requests += [
            dg.RunRequest(
                run_key=f"weekly:{w}:{tag}", partition_key=w.isoformat(), job_name=weekly_job.name
            )
            for w in weeks
        ]
        state["ingested_after"] = tag
    state["files"] = seen
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[landing_files.build_add_request(new_partitions)]
        if new_partitions
        else [],
        cursor=json.dumps(state, sort_keys=True),
    )
