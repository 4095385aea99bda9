"""atheris (coverage-guided) fuzz target: any bytes through reader and parser, in every format.

    make fuzz                      # bounded run (FUZZ_SECONDS, default 60)
    python tests/fuzz/fuzz_parser.py -max_total_time=60 tests/fuzz/corpus

The property checked is the parser's contract: no exception, and every line lands in exactly one
of blank / parsed / rejected. A crash writes its input as crash-<hash>; add it to
tests/fuzz/regressions/ (replayed by tests/test_fuzz_regressions.py) once fixed.
"""

import sys

import atheris

# Only our code is instrumented: instrumenting polars' Python layer breaks it (and is not ours to fuzz).
with atheris.instrument_imports(include=["pipeline"]):
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


def main() -> None:
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
