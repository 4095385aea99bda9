"""Property tests (hypothesis) for the classifiers and helpers the parser leans on, and the replay of
every fuzzing finding (tests/fuzz/regressions) and seed (tests/fuzz/corpus)."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import alpine
from pipeline.geo import addresses
from pipeline.geo.addresses import mask_ip_text
from pipeline.ingest.formats import nginx_format
from pipeline.ingest.reader import batch_from_bytes
from pipeline.schema import ARCHES, CLIENT_KINDS, FILE_KINDS

FUZZ = Path(__file__).parent / "fuzz"
segment = st.text(
    st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="/?#"),
    min_size=1,
    max_size=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.text(max_size=200), st.lists(segment, max_size=6).map(lambda s: "/" + "/".join(s)))
)
def test_path_facts_never_guess(path: str) -> None:
    """Any path: a known file kind (or null), a known arch (or null), package splits that rebuild."""
    row = pl.DataFrame({"path": [path]}).with_columns(alpine.path_facts()).row(0, named=True)
    assert row["file_kind"] in FILE_KINDS
    assert row["arch"] is None or row["arch"] in ARCHES
    if row["file_kind"] == "package":
        assert (
            path.replace("%2B", "+")
            .replace("%2b", "+")
            .endswith(f"{row['package']}-{row['package_version']}.apk")
        )
    if row["file_kind"] != "other":
        assert row["branch"] is not None or row["file_kind"] in ("mirrors_list", "last_updated")


@settings(max_examples=100, deadline=None)
@given(
    branch=st.sampled_from(["v3.20", "edge", "latest-stable", "v2.7"]),
    repo=st.sampled_from(["main", "community", "testing"]),
    arch=st.sampled_from(ARCHES),
    name=st.from_regex(r"[a-z][a-z0-9+_.-]{0,20}[a-z0-9]", fullmatch=True),
    version=st.from_regex(r"[0-9][0-9a-z._]{0,10}", fullmatch=True),
    rel=st.integers(0, 30),
)
def test_package_paths_round_trip(
    branch: str, repo: str, arch: str, name: str, version: str, rel: int
) -> None:
    path = f"/alpine/{branch}/{repo}/{arch}/{name}-{version}-r{rel}.apk"
    row = pl.DataFrame({"path": [path]}).with_columns(alpine.path_facts()).row(0, named=True)
    assert (row["file_kind"], row["branch"], row["repo"], row["arch"]) == (
        "package",
        branch,
        repo,
        arch,
    )
    assert f"{row['package']}-{row['package_version']}" == f"{name}-{version}-r{rel}"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=120)))
def test_client_kind_is_known_or_null(ua: str | None) -> None:
    kind = (
        pl.DataFrame({"user_agent": [ua]}, schema={"user_agent": pl.String})
        .select(alpine.client_kind())
        .item()
    )
    assert kind in (*CLIENT_KINDS, None)
    assert (kind is None) == (ua is None)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.ip_addresses().map(str), st.text(max_size=40)))
def test_normalise_ip_gives_addresses_or_none(text: str) -> None:
    ip = addresses.normalise_ip(text)
    if ip is not None:
        addr = ipaddress.ip_address(ip)
        assert addresses.normalise_ip(ip) == ip  # canonical
        net = ipaddress.ip_network(addresses.network_of(ip))
        assert addr in net and net.prefixlen == (24 if addr.version == 4 else 48)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.ip_addresses().map(str), st.text(max_size=10)), max_size=8))
def test_masking_removes_full_addresses(parts: list[str]) -> None:
    text = " ".join(parts)
    masked = mask_ip_text(text)
    assert mask_ip_text(masked) == masked  # idempotent
    for p in parts:
        try:
            addr = ipaddress.ip_address(p)
        except ValueError:
            continue
        if addr.version == 4 and not p.endswith(".0"):
            assert f" {p} " not in f" {masked} "


@settings(max_examples=60, deadline=None)
@given(
    fields=st.permutations(
        [
            "$remote_addr",
            "[$time_local]",
            '"$request"',
            "$status",
            "$body_bytes_sent",
            '"$http_user_agent"',
        ]
    ),
    sep=st.sampled_from([" ", " | ", "\t"]),
)
def test_nginx_log_format_reads_what_it_describes(fields: list[str], sep: str) -> None:
    """Any order of the usual variables: a line written by that format parses back."""
    fmt = nginx_format(sep.join(fields))
    values = {
        "$remote_addr": "192.0.2.7",
        "[$time_local]": "[20/Nov/2026:10:00:00 +0000]",
        '"$request"': '"GET /alpine/edge/main/x86/APKINDEX.tar.gz HTTP/1.1"',
        "$status": "304",
        "$body_bytes_sent": "0",
        '"$http_user_agent"': '"libfetch/2.0"',
    }
    line = sep.join(values[f] for f in fields)
    out = fmt.extract_frame(pl.DataFrame({"line_no": [1], "raw": [line]}))
    row = out.row(0, named=True)
    assert row["reason"] is None, (fmt.pattern, line)
    assert (row["client"], row["status"], row["url"], row["user_agent"]) == (
        "192.0.2.7",
        "304",
        "/alpine/edge/main/x86/APKINDEX.tar.gz",
        "libfetch/2.0",
    )


_LINE = st.one_of(
    st.text(st.characters(exclude_characters="\n", exclude_categories=["Cs"]), max_size=30).map(
        str.encode
    ),
    st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")),  # often not UTF-8
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINE, max_size=12), _LINE)
def test_batch_lines_are_the_lines_and_only_bad_ones_are_flagged(
    lines: list[bytes], tail: bytes
) -> None:
    # The reader hands over a block whose last bytes (`tail`) start a line the next block ends.
    chunk = b"".join(line + b"\n" for line in lines)
    batch = batch_from_bytes(chunk + tail, 7, end=len(chunk))
    assert batch.first_line_no == 7
    assert batch.lines.to_pylist() == [
        (line + b"\n").decode("utf-8", errors="replace") for line in lines
    ]
    want_bad = set()
    for i, line in enumerate(lines):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            want_bad.add(i)
    assert batch.bad == dict.fromkeys(sorted(want_bad), "invalid_utf8")


def test_the_fuzz_regressions_folder_is_replayed() -> None:
    # every finding the fuzzer made, once fixed, stays here; the replay below must see them
    assert len(list((FUZZ / "regressions").glob("*"))) >= 4
    assert len(list((FUZZ / "corpus").glob("*"))) >= 40


@pytest.mark.parametrize(
    "case",
    sorted(p for d in ("regressions", "corpus") for p in (FUZZ / d).glob("*")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_fuzz_inputs_replay(case: Path) -> None:
    # the fuzz target's own property, without atheris, so the replay never skips
    sys.path.insert(0, str(FUZZ))
    try:
        from fuzz_check import check
    finally:
        sys.path.remove(str(FUZZ))
    check(case.read_bytes())
