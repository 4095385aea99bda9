"""The fuzz target's property, without atheris: `fuzz_parser.py` fuzzes it, and the test suite
replays every seed (corpus/) and every fixed finding (regressions/) through it.

The property is the parser's contract: no exception, and every line lands in exactly one of
blank / parsed / rejected, and every reject has a reason. The first byte picks the format.
"""

from pipeline.ingest import enrich
from pipeline.ingest.formats import COMBINED, FASTLY, nginx_format
from pipeline.ingest.reader import batch_from_bytes
from pipeline.ingest.run import batch_rows

FORMATS = [
    COMBINED,
    FASTLY,
    nginx_format(
        '$remote_addr [$time_local] "$request" $status $body_bytes_sent "$http_user_agent" $request_time'
    ),
]


def check(data: bytes) -> None:
    if not data:
        return
    fmt = FORMATS[data[0] % len(FORMATS)]
    body = data[1:]
    if not body.endswith(b"\n"):
        body += b"\n"
    ctx = enrich.Context("fuzz", "fuzz", fmt, b"k" * 32)
    out = batch_rows(batch_from_bytes(body), ctx)
    seen = out.requests["line_no"].to_list() + out.rejects["line_no"].to_list()
    lines = body.count(b"\n")
    if len(seen) != len(set(seen)) or len(seen) + out.blank != lines:
        raise AssertionError(f"lines not accounted: {len(seen)} + {out.blank} != {lines}")
    if out.rejects["reason"].null_count():
        raise AssertionError("a reject without a reason")
