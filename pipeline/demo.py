"""`dlcdn demo`: a synthetic week from landing folder to answers, on the embedded defaults."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

from pipeline import enrich_setup, queries
from pipeline.generate import generate
from pipeline.ingest import ingest_file
from pipeline.settings import load
from pipeline.warehouse import Warehouse


def demo_week(today: dt.date | None = None) -> dt.date:
    """Monday of the last complete ISO week."""
    today = today or dt.datetime.now(dt.UTC).date()
    return today - dt.timedelta(days=today.weekday() + 7)


def run_demo(
    base: Path, lines_per_day: int = 50_000, days: int = 7, echo: Callable[[str], None] = print
) -> Warehouse:
    """Generates `days` of both log formats into base/landing, ingests them into base/warehouse."""
    settings = load()
    landing, wh_root = base / "landing", base / "warehouse"
    shutil.rmtree(wh_root, ignore_errors=True)
    start = demo_week()
    echo(f"1/3 generating {days} day(s) of SYNTHETIC dl-cdn logs from {start} into {landing}")
    files = generate(
        landing / "fastly", start, days, lines_per_day, fmt="fastly", seed=1, gzip=True
    )
    files += generate(
        landing / "mirror", start, days, max(lines_per_day // 10, 1000), fmt="combined", seed=2
    )
    echo(f"2/3 ingesting {len(files)} file(s) into {wh_root}")
    wh = Warehouse(wh_root)
    geo, key = enrich_setup.open_enrichment(settings)
    try:
        for f in files:
            r = ingest_file(f, wh, settings, geo=geo, ip_key=key)
            echo(
                f"    {f.name}: {r.lines_total:,} lines = {r.lines_blank:,} blank + "
                f"{r.rows_parsed:,} parsed + {r.rows_rejected:,} rejected ({r.seconds:.1f} s)"
            )
    finally:
        if geo is not None:
            geo.close()
    end = start + dt.timedelta(days=days - 1)
    params = {"start": start.isoformat(), "end": end.isoformat()}
    echo("3/3 a few answers (every one is a file in sql/, runnable with `dlcdn sql --file`):")
    for name in ("daily_traffic", "traffic_by_country", "traffic_by_arch"):
        frame = queries.run(wh_root, queries.sql_file(name), params)
        echo(f"\n-- sql/{name}.sql")
        echo(queries.format_frame(frame.head(12)))
    echo(f"\nwarehouse: {wh_root.resolve()} (open it with: duckdb {wh.db_path.resolve()})")
    echo(
        f'try:       DLCDN_WAREHOUSE={wh_root} dlcdn sql "SELECT file_kind, count(*) FROM requests GROUP BY ALL"'
    )
    return wh
