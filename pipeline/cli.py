"""`dlcdn`: the command line. Every subcommand has --help, and exits non-zero with a one-line reason."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipeline import settings as settings_mod
from pipeline.geo.privacy import SettingError
from pipeline.settings import DEFAULT_EGRESS_BUDGET_TB

if TYPE_CHECKING:
    from pipeline.ingest.run import IngestResult
    from pipeline.warehouse.store import Warehouse


class DlcdnGroup(click.Group):
    """Turns the errors users cause into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (_input_error(), SettingError, ValueError, OSError, _mail_error()) as e:
            click.echo(f"dlcdn: error: {e}", err=True)
            sys.exit(2)
        except _duckdb_errors() as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            click.echo(f"dlcdn: SQL error: {first}", err=True)
            sys.exit(2)


# The error classes of modules with heavy imports are looked up only when an error arrives, so
# that a command that needs neither (`dlcdn sql`) starts without loading them.
def _input_error() -> type[BaseException]:
    from pipeline.ingest.reader import InputError

    return InputError


def _mail_error() -> type[BaseException]:
    from pipeline.report.mail import MailError

    return MailError


def _duckdb_errors() -> tuple[type[BaseException], ...]:
    import duckdb

    return (duckdb.Error,)


@click.group(cls=DlcdnGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dlcdn")
def main() -> None:
    """Traffic analytics for dl-cdn.alpinelinux.org.

    Settings come from DLCDN_* environment variables or ./dlcdn.toml (see README); the warehouse
    is DLCDN_WAREHOUSE (default ./warehouse).
    """


def _settings() -> settings_mod.Settings:
    return settings_mod.load()


@main.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder to write the log files into.",
)
@click.option(
    "--start", type=click.DateTime(["%Y-%m-%d"]), required=True, help="First day (UTC), YYYY-MM-DD."
)
@click.option(
    "--days",
    type=click.IntRange(1, 3660),
    default=1,
    show_default=True,
    help="Number of days, one file each.",
)
@click.option(
    "--lines-per-day",
    type=click.IntRange(1),
    default=100_000,
    show_default=True,
    help="Average lines per day (weekly cycle and release bumps vary it).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["combined", "fastly"]),
    default="combined",
    show_default=True,
    help="combined: T1 mirror nginx; fastly: Fastly JSON behind a syslog prefix.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes.")
@click.option("--gzip", is_flag=True, help="Write .log.gz files.")
def generate(
    out_dir: Path,
    start: dt.datetime,
    days: int,
    lines_per_day: int,
    fmt: str,
    seed: int,
    gzip: bool,
) -> None:
    """Write realistic SYNTHETIC dl-cdn access logs (one file per day) for demos, tests and benchmarks."""
    from pipeline.synthetic.generate import generate as run

    total = days * lines_per_day
    with _progress() as bar:
        task = bar.add_task("generating", total=total)
        files = run(
            out_dir,
            start.date(),
            days,
            lines_per_day,
            fmt=fmt,
            seed=seed,
            gzip=gzip,
            progress=lambda n: bar.update(task, completed=n),
        )
    for f in files:
        click.echo(f"{f}  {f.stat().st_size:,} bytes")
    click.echo(f"wrote {len(files)} synthetic file(s) to {out_dir}")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    default="auto",
    show_default=True,
    metavar="FORMAT",
    help="auto | combined | common | fastly | nginx:'<log_format>' (detected per file when auto).",
)
@click.option(
    "--source",
    default=None,
    help="Log source name for the `source` column (default: fastly or mirror).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Ingest again even if the same content is already in the warehouse.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the per-file accounting as JSON lines."
)
def ingest(
    paths: tuple[Path, ...], fmt: str, source: str | None, force: bool, as_json: bool
) -> None:
    """Parse log files (plain, .gz or .zst; directories recursively) into the warehouse.

    Prints per-file accounting: lines = blank + parsed + rejected, always. Then rebuilds the
    rollups of every day the files wrote rows to (and of any day an interrupted run left).
    """
    from pipeline.ingest import enrich
    from pipeline.ingest.formats import resolve_format
    from pipeline.ingest.landing import local_marker
    from pipeline.ingest.reader import InputError
    from pipeline.ingest.run import expand_paths, ingest_file
    from pipeline.warehouse.store import Warehouse

    s = _settings()
    resolve_format(fmt, s.fastly_keys)  # a bad --format fails before any work
    files = []
    for f in expand_paths(paths):
        if local_marker(f):
            click.echo(f"{f}: skipped, the synthetic-data marker of `dlcdn generate` (not a log)")
        else:
            files.append(f)
    wh = Warehouse(s.warehouse)
    geo, key = enrich.open_enrichment(s)
    failed = 0
    touched: set[dt.date] = set()
    try:
        with _progress() as bar:
            for f in files:
                size = f.stat().st_size
                task = bar.add_task(f.name[:40], total=None)
                try:
                    result = ingest_file(
                        f,
                        wh,
                        s,
                        fmt_spec=fmt,
                        source=source,
                        geo=geo,
                        ip_key=key,
                        force=force,
                        progress=_task_progress(bar, task, f.name[:32]),
                    )
                except InputError as e:
                    bar.remove_task(task)
                    click.echo(f"dlcdn: error: {e}", err=True)
                    failed += 1
                    continue
                bar.remove_task(task)
                _print_result(result, as_json, size)
                touched.update(result.dates)
    finally:
        geo.close()
    # The same code as the daily Dagster asset; stale days too, so that running an ingest again
    # after it was killed between its commits and its rollups leaves what one clean run leaves.
    from pipeline.warehouse import rollups

    _rebuild_rollups(wh, touched | set(rollups.stale_days(wh)), err=as_json)
    if failed:
        click.echo(f"dlcdn: {failed} of {len(files)} file(s) could not be ingested", err=True)
        sys.exit(1)


def _rebuild_rollups(wh: Warehouse, days: set[dt.date] | list[dt.date], err: bool = False) -> None:
    """Rebuilds the rollups of `days` with a progress bar, then says what it did."""
    import time

    from pipeline.warehouse import rollups

    if not days:
        return
    started = time.monotonic()
    with _progress() as bar:
        task = bar.add_task("rollups", total=len(days))
        built = rollups.build_days(
            wh, days, progress=lambda b: bar.update(task, advance=1, description=f"rollups {b.day}")
        )
    size = sum(sum(b.file_bytes.values()) for b in built)
    click.echo(
        f"rollups: {len(built)} day(s) rebuilt ({built[0].day} .. {built[-1].day}), "
        f"{size / 1e6:,.1f} MB, in {time.monotonic() - started:.1f} s",
        err=err,
    )


@main.command()
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), help="First day to rebuild.")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), help="Last day to rebuild.")
def rollup(start: dt.datetime | None, end: dt.datetime | None) -> None:
    """Rebuild the rollups (the per-day tables every question reads).

    Without options: the days whose requests changed since their rollups were built (`dlcdn
    ingest` and the daily Dagster job keep them current; this catches up an older warehouse).
    With --start and/or --end: every day in that range that holds data.
    """
    from pipeline.warehouse import rollups
    from pipeline.warehouse.store import Warehouse

    wh = Warehouse(_settings().warehouse)
    if start is None and end is None:
        days = rollups.stale_days(wh)
    else:
        days = rollups.days_in(
            wh, start.date() if start else dt.date.min, end.date() if end else dt.date.max
        )
    if not days:
        click.echo(
            "rollups: up to date"
            if start is None and end is None
            else "rollups: no day with data in that range"
        )
        return
    _rebuild_rollups(wh, days)


def _task_progress(bar, task, name: str):  # type: ignore[no-untyped-def]
    def update(lines: int, nbytes: int) -> None:
        bar.update(task, description=f"{name} {lines:,} lines", completed=nbytes)

    return update


def _print_result(r: IngestResult, as_json: bool, size: int) -> None:
    if as_json:
        d = {k: v for k, v in vars(r).items()}
        click.echo(json.dumps(d, default=str))
        return
    if r.status == "duplicate":
        click.echo(f"{r.path}: skipped, {r.note} (file_id {r.file_id})")
        return
    rate = r.lines_total / r.seconds if r.seconds > 0 else 0
    reasons = ", ".join(f"{k} {v:,}" for k, v in r.reject_reasons.items())
    click.echo(
        f"{r.path}: {r.format}, {r.lines_total:,} lines = {r.lines_blank:,} blank + "
        f"{r.rows_parsed:,} parsed + {r.rows_rejected:,} rejected"
        + (f" ({reasons})" if reasons else "")
        + f"; {len(r.dates)} day(s); {r.seconds:.1f} s, {rate:,.0f} lines/s"
    )
    if r.supersedes:
        click.echo(f"  replaces the shorter version {r.supersedes} of the same file")
    if r.note:
        click.echo(f"  note: {r.note}")


@main.command()
@click.option(
    "--date",
    "dates",
    multiple=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="Check only this day's partitions and the logs that wrote to them (repeatable).",
)
def verify(dates: tuple[dt.datetime, ...]) -> None:
    """Check the warehouse against its manifest; exit 1 when anything is wrong.

    Every listed Parquet file present and readable, its rows and SHA-256 as recorded at commit,
    each log's rows adding up to its manifest counts, no unlisted files in the table folders.
    Each problem is printed with its file.
    """
    from pipeline.warehouse.store import Warehouse
    from pipeline.warehouse.verify import verify as run_verify

    s = _settings()
    with _progress() as bar:
        task = bar.add_task("verifying", total=None)
        result = run_verify(
            Warehouse(s.warehouse),
            [d.date() for d in dates] or None,
            progress=lambda n: bar.update(task, description=f"verified {n:,} files"),
        )
    for problem in result.problems:
        click.echo(str(problem))
    click.echo(result.summary())
    if result.without_checksum:
        click.echo(
            f"note: {len(result.without_checksum):,} file(s) were written before checksums were "
            "recorded: checked for presence, readability and row counts, not against a checksum"
        )
    if not result.ok:
        sys.exit(1)


@main.command()
@click.argument("query", required=False)
@click.option(
    "--file",
    "sql_file",
    type=click.Path(path_type=Path),
    help="Run the statement in this .sql file (e.g. sql/traffic_by_day.sql).",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="K=V",
    help="Bind $K to V (repeatable). Values are bound, never pasted into the SQL.",
)
@click.option(
    "--format",
    "out_format",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="Print the result as a table, as CSV with a header, or as a JSON array of rows.",
)
def sql(query: str | None, sql_file: Path | None, params: tuple[str, ...], out_format: str) -> None:
    """Query the warehouse with DuckDB SQL (views: requests, rejects, ingested_files, ...)."""
    from pipeline.warehouse import queries

    if (query is None) == (sql_file is None):
        raise click.UsageError("give a query or --file, not both")
    text = sql_file.read_text() if sql_file is not None else str(query)
    bound: dict[str, str] = {}
    for p in params:
        k, sep, v = p.partition("=")
        if not sep or not k:
            raise click.UsageError(f"--param {p!r}: use K=V")
        bound[k] = v
    s = _settings()
    frame = queries.run(s.warehouse, text, bound)
    queries.print_frame(frame, out_format)


@main.command()
@click.argument("addresses", nargs=-1)
def geoip(addresses: tuple[str, ...]) -> None:
    """Show which GeoIP databases are in use (type, build date, licence) and look up ADDRESSES.

    Databases come from DLCDN_GEOIP_CITY / DLCDN_GEOIP_COUNTRY / DLCDN_GEOIP_ASN, or the embedded
    DB-IP City Lite default.
    """
    from pipeline.geo.addresses import normalise_ip
    from pipeline.geo.geoip import GeoIP
    from pipeline.warehouse import queries

    bad = [a for a in addresses if normalise_ip(a) is None]
    if bad:
        raise click.BadParameter(f"not an IP address: {', '.join(bad)}", param_hint="ADDRESSES")
    s = _settings()
    with GeoIP.from_settings(s) as geo:
        described = geo.describe()
        if not described:
            click.echo("no GeoIP database in use: country and location stay NULL")
        for d in described:
            default = "  [embedded default]" if d.get("default") else ""
            click.echo(
                f"{d['role']:8} {d['database_type']}, built {d['build_date']:%Y-%m-%d}, "
                f"{d['path']}{default}"
            )
            if d.get("attribution"):
                click.echo(f"         {d['attribution']}")
        if addresses:
            queries.print_frame(geo.lookup([normalise_ip(a) or a for a in addresses]))


@main.command()
@click.option(
    "--start",
    type=click.DateTime(["%Y-%m-%d"]),
    help="First day of demand (default: 28 days before --end).",
)
@click.option(
    "--end",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Last day of demand (default: the last day with data).",
)
@click.option(
    "--demand",
    type=click.Choice(["client", "origin"]),
    default="client",
    show_default=True,
    help="client: bytes by client location; origin: cache miss+pass bytes by POP (what T1 mirrors carry).",
)
@click.option(
    "--k",
    "k_max",
    type=click.IntRange(1, 50),
    default=5,
    show_default=True,
    help="Largest site set to rank.",
)
@click.option(
    "--sites",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Sites file (YAML; default: the shipped pipeline/data/sites.yaml).",
)
@click.option(
    "--budget-eur",
    type=click.FloatRange(0),
    help="Also: the best set whose sites cost at most this per month (EUR), and the frontier.",
)
@click.option(
    "--frontier",
    is_flag=True,
    help="Also: the latency-versus-cost frontier (site sets no other set beats on both).",
)
def placement(
    start: dt.datetime | None,
    end: dt.datetime | None,
    demand: str,
    k_max: int,
    sites: Path | None,
    budget_eur: float | None,
    frontier: bool,
) -> None:
    """Rank mirror site sets for k = 1..K by demand-weighted latency under capacity; with
    --budget-eur or --frontier, weigh their monthly cost too."""
    from pipeline.decisions import tables as decisions
    from pipeline.warehouse import queries

    s = _settings()
    r = decisions.placement_table(
        s.warehouse,
        start.date() if start else None,
        end.date() if end else None,
        demand,
        k_max,
        sites,
        budget_eur=budget_eur,
        frontier=frontier,
    )
    click.echo(
        f"{r.demand_kind} demand {r.start} .. {r.end}: {r.demand_points:,} demand points "
        f"(latency from great-circle distance, see pipeline/decisions/placement.py)"
    )
    click.echo(queries.format_frame(r.frame()))
    if r.best_within_budget is not None:
        b = r.best_within_budget
        paid = [n for n in b.sites if r.site_cost.get(n, 1) > 0]
        click.echo(
            f"\nBest within {r.budget_eur:,.0f} EUR/month: {len(b.sites)} site(s) "
            f"(paid: {', '.join(paid) or 'none'}), mean RTT {b.mean_latency_ms:.1f} ms, "
            f"{b.share_within_50ms:.0%} of bytes within 50 ms, {b.cost_month:,.0f} EUR/month"
        )
    if r.frontier:
        click.echo(
            "\nLatency versus cost: the site sets no other set beats on both, cheapest first "
            "(change and eur_per_ms: against the row above; sites with a cost of 0 are free)"
        )
        click.echo(queries.format_frame(r.frontier_frame().drop("sites", "gain_ms")))


@main.command()
@click.option(
    "--budget-tb",
    type=float,
    default=None,
    help=f"Monthly budget in TB (default: DLCDN_EGRESS_BUDGET_TB, {DEFAULT_EGRESS_BUDGET_TB:g}).",
)
def budget(budget_tb: float | None) -> None:
    """Egress per month: actuals, month-to-date projection, 6-month forecast vs budget, with backtest error."""
    from pipeline.decisions import tables as decisions

    s = _settings()
    r = decisions.budget_table(
        s.warehouse,
        budget_tb if budget_tb is not None else s.egress_budget_tb,
        price_table=s.price_table,
    )
    click.echo(r.text())


@main.command()
@click.option("--week", required=True, help="ISO week, e.g. 2026-W47 (Monday to Sunday, UTC).")
@click.option(
    "--send",
    is_flag=True,
    help="Mail it (DLCDN_SMTP_*); without, it is written and left in the outbox.",
)
@click.option("--force", is_flag=True, help="Send even if this week was already sent.")
def report(week: str, send: bool, force: bool) -> None:
    """Build the weekly traffic report (HTML with charts, text, CSVs) and optionally mail it."""
    from pipeline.report import build, mail

    s = _settings()
    r = build.build_for(s, s.warehouse, week)
    html = build.write(r, Path(s.warehouse) / "reports" / week)
    click.echo(f"{r.subject}\nreport: {html}")
    message = build.to_email(r, s.report_from, s.report_to)
    outbox = Path(s.warehouse) / "outbox"
    if not send:
        click.echo(f"outbox: {mail.write_outbox(outbox, week, message)} (not sent; use --send)")
        return
    outcome = mail.deliver(message, week, outbox, s, force=force)
    click.echo(f"{outcome.status}: {outcome.eml} to {', '.join(outcome.recipients) or '(nobody)'}")


@main.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for the package: missing or empty (see --force).",
)
@click.option(
    "--start",
    type=click.DateTime(["%Y-%m-%d"]),
    help="First day; its ISO week is published whole (default: the first week with data).",
)
@click.option(
    "--end",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Last day; its ISO week is published whole and must have ended (default: the last "
    "ended week with data).",
)
@click.option(
    "--k",
    type=click.IntRange(2),
    default=None,
    help="Least distinct clients in a published row, at least 2 (default: DLCDN_PUBLISH_K, 10).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace the package already in --out (only a folder holding a datapackage.json).",
)
def publish(
    out_dir: Path, start: dt.datetime | None, end: dt.datetime | None, k: int | None, force: bool
) -> None:
    """Write the public, k-anonymous dataset: a Frictionless Data Package of CSV and Parquet.

    Daily totals; per ISO week by place, architecture, branch, repository, file kind, client
    kind; top packages; APKINDEX checks per branch. Every row counts at least k distinct clients
    (exact); rows below k fold into "(other)" rows or are dropped, and the package's
    suppression table accounts for them. No client id, network, ASN, address, coordinate or
    User-Agent is written. The package is validated, then replaces --out whole. docs/publish.md.
    """
    from pipeline.dates import iso_week
    from pipeline.geo.geoip import GeoIP
    from pipeline.publish.package import publish as run
    from pipeline.warehouse import queries
    from pipeline.warehouse.store import Warehouse

    s = _settings()
    with GeoIP.from_settings(s) as geoip_dbs:
        described = geoip_dbs.describe()
    p = run(
        Warehouse(s.warehouse),
        out_dir,
        start.date() if start else None,
        end.date() if end else None,
        k if k is not None else s.publish_k,
        force=force,
        geoip=described,
        progress=lambda line: click.echo(f"  {line}", err=True),
    )
    click.echo(
        f"{p.start} .. {p.end} (ISO weeks {iso_week(p.start)} .. {iso_week(p.end)}), "
        f"k = {p.k}, in {p.seconds:.1f} s"
    )
    click.echo(queries.format_frame(p.summary()))
    click.echo(f"package: {p.out / 'datapackage.json'} (data sheet: {p.out / 'README.md'})")


def _progress():  # type: ignore[no-untyped-def]
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        transient=True,
        disable=not sys.stderr.isatty(),
        console=None,
    )


if __name__ == "__main__":
    main()
