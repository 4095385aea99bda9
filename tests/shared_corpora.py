"""The real corpora in `../shared/corpora` (public logs, MaxMind's test databases), kept outside
the repository. CI has them; in a clone without them the tests that read them skip, saying why.
The project's own fixtures are committed and never skip.

`DLCDN_TEST_SHARED` points at another copy of the shared folder (default: `../shared` beside the
repository).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("DLCDN_TEST_SHARED") or Path(__file__).resolve().parents[2] / "shared")
CORPORA = SHARED / "corpora"

# Marks a test (or, as `pytestmark`, a module) that reads CORPORA.
needs_corpora = pytest.mark.skipif(
    not CORPORA.is_dir(),
    reason=f"the real corpora are not in this clone ({CORPORA}); CI has them",
)
