"""Named crash points, so that a test can kill a writer at an exact step instead of after a sleep.

`DLCDN_CRASH_AT=<point>` (or `<point>@<n>`: the n-th time the process reaches it) makes the process
SIGKILL itself when it reaches `crash_point(<point>)`: no cleanup, no `finally`, no flush, as a
power cut or the OOM killer would leave it. Unset (always, outside tests) a point costs one
environment lookup. The variable is read at the point, never at import, so a test sets it per run.
`POINTS` names every point and the state a crash there leaves (tests/test_crash.py covers each).
"""

from __future__ import annotations

import os
import signal

VARIABLE = "DLCDN_CRASH_AT"

POINTS: dict[str, str] = {
    # ingest_file and Warehouse.commit
    "ingest:batch": "a batch of the file was parsed and written to staging (`@n`: the n-th)",
    "ingest:staged": "every row is staged, the commit has not begun",
    "commit:parquet_moved": "a staged Parquet file was moved into the warehouse (`@n`: the n-th)",
    "commit:before_manifest": "all Parquet is in place, the manifest row is not written",
    "commit:manifest_unrenamed": "the manifest row is written under its temporary name, not renamed",
    "commit:manifest_renamed": "the manifest row is in place, the views are not refreshed",
    "commit:views_refreshed": "the views are refreshed, the staging folder is not removed",
    # aggregates.build (the daily and weekly aggregates)
    "aggregate:unrenamed": "an aggregate's new file is written, not yet renamed over the old one",
    "aggregate:renamed": "an aggregate's file is in place, the views are not refreshed",
    # mail.deliver (the report's outbox)
    "outbox:unrenamed": "the message is written under its temporary name in the outbox",
    "outbox:written": "the message is in the outbox, not yet sent",
    "outbox:sent": "the server took the message, the sent record is not written",
    "outbox:recorded": "the sent record is written, the message not yet moved to sent/",
}

_reached: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Kills this process with SIGKILL if DLCDN_CRASH_AT names `name` (and this is its n-th time)."""
    wanted = os.environ.get(VARIABLE)
    if not wanted:
        return
    point, _, nth = wanted.partition("@")
    if point != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
