"""The README is a map: every file it and docs/ name exists, and every link lands on a heading.

A moved module or a renamed section then fails here instead of leaving the map pointing nowhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Repository paths written in backticks: `pipeline/ingest/run.py`, `sql/*.sql`, `tests/`.
TOP = "pipeline|assets|sql|docs|tests|benchmarks|dagster_home"
PATH = re.compile(rf"`((?:{TOP})/[^`\s]*)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", page.read_text(), flags=re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_named_files_exist(page: Path) -> None:
    named = PATH.findall(page.read_text())
    # a placeholder (`sql/rollups/<name>.sql`) stands for any file: read it as a wildcard
    missing = [p for p in named if not any(REPO.glob(re.sub(r"<[^>/]+>", "*", p).rstrip("/")))]
    assert missing == [], f"{page.name} names files that do not exist"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_land(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists() or (anchor and anchor not in _anchors(dest)):
            broken.append(target)
    assert broken == [], f"{page.name} has broken links"


def test_readme_reaches_every_docs_page() -> None:
    readme = (REPO / "README.md").read_text()
    unlinked = [p.name for p in PAGES[1:] if f"(docs/{p.name}" not in readme]
    assert unlinked == []
