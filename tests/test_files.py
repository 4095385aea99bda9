"""pipeline.files: whole-file replacement and the lock every writer of shared state takes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from pipeline import files


def test_atomic_path_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "x.txt"
    files.atomic_write_text(dest, "first")
    files.atomic_write_bytes(dest, b"second")
    assert dest.read_bytes() == b"second"
    files.atomic_write_parquet(pl.DataFrame({"a": [1, 2]}), tmp_path / "sub" / "t.parquet")
    assert pl.read_parquet(tmp_path / "sub" / "t.parquet")["a"].to_list() == [1, 2]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["t.parquet", "x.txt"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    dest = tmp_path / "x.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError), files.atomic_path(dest) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("the writer died")
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_no_overwrite_mode_keeps_what_another_writer_made(tmp_path: Path) -> None:
    dest = tmp_path / "key"
    dest.write_text("theirs")
    with pytest.raises(FileExistsError), files.atomic_path(dest, replace=False) as tmp:
        tmp.write_text("mine")
    assert dest.read_text() == "theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["key"]


def test_the_lock_excludes_other_threads_and_lets_the_holder_nest(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    events: list[tuple[str, int]] = []

    def hold(i: int) -> None:
        with files.lock(path):
            events.append(("in", i))
            with files.lock(path):  # the same thread again: no deadlock
                time.sleep(0.05)
            events.append(("out", i))

    threads = [threading.Thread(target=hold, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(events) == 8
    for k in range(0, 8, 2):  # every holder left before the next came in
        assert events[k][0] == "in" and events[k + 1] == ("out", events[k][1])


def test_the_lock_excludes_another_process(tmp_path: Path) -> None:
    path, held, log = tmp_path / ".lock", tmp_path / "held", tmp_path / "log"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from pipeline import files\n"
            "with files.lock(Path(sys.argv[1])):\n"
            "    Path(sys.argv[2]).touch(); time.sleep(1.0)\n"
            "    with open(sys.argv[3], 'a') as f: f.write('child\\n')\n",
            str(path),
            str(held),
            str(log),
        ]
    )
    try:
        deadline = time.monotonic() + 60
        while not held.exists():
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        with files.lock(path), open(log, "a") as f:
            f.write("parent\n")
    finally:
        child.wait(timeout=60)
    assert log.read_text() == "child\nparent\n"
