"""atheris (coverage-guided) fuzz target: any bytes through reader and parser, in every format.

    make fuzz                      # bounded run (FUZZ_SECONDS, default 60)
    python tests/fuzz/fuzz_parser.py -max_total_time=60 tests/fuzz/corpus

The property checked is `fuzz_check.check`: the parser's contract (no exception, every line
accounted for). A crash writes its input as crash-<hash>; add it to
tests/fuzz/regressions/ (replayed by tests/test_properties.py) once fixed.
"""

import sys

import atheris

# Only our code is instrumented: instrumenting polars' Python layer breaks it (and is not ours to fuzz).
with atheris.instrument_imports(include=["pipeline"]):
    from fuzz_check import check


def main() -> None:
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
