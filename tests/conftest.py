"""Dagster state stays in temporary folders: every test runs with DAGSTER_HOME in one (`make test`
exports the repository's own dagster_home), and the session fails if the repository gained
Dagster state meanwhile (a relative storage path once put run databases in ./storage)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What the repository's own instance folder holds in git; anything else there is runtime state.
TRACKED_INSTANCE_FILES = {"dagster.yaml", "README.md"}


def _dagster_state() -> set[Path]:
    found = set(REPO.glob("storage/**/*")) | set(REPO.glob(".tmp_dagster_home_*"))
    found |= {p for p in (REPO / "dagster_home").glob("*") if p.name not in TRACKED_INSTANCE_FILES}
    return found


@pytest.fixture(scope="session", autouse=True)
def _temporary_dagster_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    before = _dagster_state()
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        yield
    written = sorted(str(p.relative_to(REPO)) for p in _dagster_state() - before)
    assert not written, f"tests wrote Dagster state into the repository: {written}"
