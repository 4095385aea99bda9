"""The `dlcdn` command: the library's commands plus those that run through Dagster."""

import logging
import os
import sys
from pathlib import Path

import click

from pipeline.cli import main


@main.command()
@click.option(
    "--dir",
    "base",
    type=click.Path(path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="Folder for the demo's landing logs and warehouse.",
)
@click.option(
    "--lines-per-day",
    type=click.IntRange(1000),
    default=20_000,
    show_default=True,
    help="Fastly lines on an ordinary weekday (the mirror log gets a tenth).",
)
@click.option(
    "--days",
    type=click.IntRange(7, 366),
    default=28,
    show_default=True,
    help="Days of history, ending with the last complete ISO week (the forecast needs 14).",
)
def demo(base: Path, lines_per_day: int, days: int) -> None:
    """The one-command tour: synthetic weeks through every Dagster asset and check, in-process."""
    from assets.demo import run_demo

    ok = run_demo(base, lines_per_day=lines_per_day, days=days, echo=click.echo)
    _exit_without_teardown(0 if ok else 1)


def _exit_without_teardown(code: int) -> None:
    """Ends the process once every result is written and closed, skipping the interpreter's
    teardown: there, duckdb 2.0's bindings print a long "nanobind: leaked ..." report after Great
    Expectations has run in the process (typing caches still hold duckdb-engine's annotations).
    The report is a false alarm at exit and would bury the tour's summary."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


__all__ = ["main"]
