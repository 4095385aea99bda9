"""The `dlcdn` command: the library's commands plus those that run through Dagster."""

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

    if not run_demo(base, lines_per_day=lines_per_day, days=days, echo=click.echo):
        sys.exit(1)


__all__ = ["main"]
