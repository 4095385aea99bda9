# dlcdn: make setup | demo | test | bench | bench-stages | bench-all | bench-memory | bench-forecast | bench-queries | lint | docs | lock | dev
# Every target installs what it needs first, so a fresh clone needs only `make demo` or `make test`.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Byte-compiled installs: without them `import great_expectations` alone takes several times longer.
export UV_COMPILE_BYTECODE := 1
export DAGSTER_HOME ?= $(CURDIR)/dagster_home

.PHONY: setup demo test bench bench-stages bench-all bench-memory bench-forecast bench-queries profile lint fmt docs lock dev clean system-deps fuzz audit

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==0.13.8
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m pipeline.geo.geoip install-default
	touch $@

# Debian tools the tests use: GoAccess is the independent analyzer the parser is checked against;
# Chromium renders the weekly report's HTML to check it displays; PostgreSQL, nginx and
# systemd-analyze run the shipped deploy/ configuration for real (openssl makes the nginx test's
# certificate and password hash). Each entry is command:package.
SYSTEM_DEPS := goaccess:goaccess chromium:chromium nginx:nginx systemd-analyze:systemd openssl:openssl
system-deps:
	@missing=""; for dep in $(SYSTEM_DEPS); do \
	  cmd="$${dep%%:*}"; command -v "$$cmd" >/dev/null || [ -x "/usr/sbin/$$cmd" ] || missing="$$missing $${dep#*:}"; done; \
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	  else echo "make: the tests need Debian packages:$$missing (sudo apt-get install$$missing)" >&2; exit 1; fi; fi

demo: setup
	$(BIN)/dlcdn demo

test: setup system-deps
	$(BIN)/python -m pytest -n 2 -q

# Ingest against the bare polars parse and GoAccess on 5M generated lines: combined and Fastly,
# plain and gzip, medians of 3 (~35 minutes on 2 cores, most of it GoAccess); tables to bench-data/.
bench: setup system-deps
	mkdir -p bench-data
	set -eo pipefail; for f in combined fastly; do for z in "" --gzip; do \
	  $(BIN)/python benchmarks/bench_ingest.py --format $$f $$z --runs 3 --skip-python \
	    | tee bench-data/results-5M-$$f$$z.md; done; done

# CPU time of each ingest stage against the baselines', and the speed bound it sets (~3 minutes).
bench-stages: setup
	$(BIN)/python benchmarks/bench_stages.py --runs 3

# The egress forecast on scenarios with a known truth (steps, growth change, outages, release bump):
# next month against the truth and the 95% interval; one scenario through generated logs (~1 min).
bench-forecast: setup
	$(BIN)/python benchmarks/bench_forecast.py

# The whole benchmark suite (about 50 minutes on 2 cores): 5M and 20M generated lines, plain and
# gzip, both formats; the stages' CPU time; the history cost; a profile. Tables go to
# bench-data/results-*.md (make bench-memory, separate: ~15 minutes).
bench-all: setup
	set -eo pipefail; for f in combined fastly; do for z in "" --gzip; do \
	  $(BIN)/python benchmarks/bench_ingest.py --format $$f $$z --runs 3 | tee bench-data/results-5M-$$f$$z.md; \
	  $(BIN)/python benchmarks/bench_ingest.py --format $$f $$z --lines 20000000 | tee bench-data/results-20M-$$f$$z.md; \
	done; done
	set -eo pipefail; for f in combined fastly; do \
	  $(BIN)/python benchmarks/bench_stages.py --format $$f --runs 3 | tee bench-data/results-stages-$$f.md; done
	$(BIN)/python benchmarks/bench_history.py --runs 7 | tee bench-data/results-history.md
	$(BIN)/python benchmarks/profile_ingest.py | tee bench-data/results-profile.md

# RSS over an ingest of 20M gzip lines and of the same file 10 times over (234M lines, ~10 min).
bench-memory: setup
	$(BIN)/python benchmarks/bench_memory.py --gzip --repeat 10 | tee bench-data/results-memory.md

# Every question from the rollups against its raw scan, plus report, budget and placement, at
# 28 days x 2M and x 0.5M generated lines a day. The warehouses are built once into
# bench-data/queries/ (about an hour on 2 cores) and reused; a later run takes ~20 minutes.
bench-queries: setup
	mkdir -p bench-data
	$(BIN)/python benchmarks/bench_queries.py | tee bench-data/results-queries.md

profile: setup
	$(BIN)/python benchmarks/profile_ingest.py

# Coverage-guided fuzzing of the parser for FUZZ_SECONDS; findings land in tests/fuzz/ as
# crash-* files: move them to tests/fuzz/regressions/ (replayed by the test suite) once fixed.
FUZZ_SECONDS ?= 60
fuzz: setup
	tmp=$$(mktemp -d) && cp tests/fuzz/corpus/* $$tmp/ && \
	$(BIN)/python tests/fuzz/fuzz_parser.py -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=tests/fuzz/ $$tmp

# Known vulnerabilities in the locked dependencies (queries the package index's advisory data).
audit: setup
	$(BIN)/pip-audit --strict --progress-spinner off -r requirements.lock --disable-pip --no-deps

lint: setup
	$(BIN)/ruff check pipeline assets tests benchmarks
	$(BIN)/ruff format --check pipeline assets tests benchmarks
	$(BIN)/mypy

fmt: setup
	$(BIN)/ruff format pipeline assets tests benchmarks
	$(BIN)/ruff check --fix pipeline assets tests benchmarks

# The column dictionary, generated from the table declarations (tests/test_warehouse_docs.py
# fails when the committed file is stale).
docs: setup
	$(BIN)/python -m pipeline.schema > docs/warehouse.md.tmp && mv docs/warehouse.md.tmp docs/warehouse.md

# Re-resolve the pinned stack (needs the package registry): edit pyproject.toml, then `make lock`.
lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --universal \
	  --python-version 3.11 --no-header -o requirements.lock

# The Dagster UI, daemon (sensor, schedules, queued runs) and code location, on 127.0.0.1 only.
dev: setup
	$(BIN)/dagster dev -m assets.definitions -h 127.0.0.1 -p 3000

clean:
	rm -rf warehouse landing demo .pytest_cache .hypothesis
