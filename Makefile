# Every target sets itself up: a fresh machine needs only python3 (3.11+) and make.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.synced
# telemetry off in every entry point (hospital networks allow no phone-home)
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export GX_ANALYTICS_ENABLED := false
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: setup demo test test-fast lint bench clean

$(UV):
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11+) on PATH" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9

$(STAMP): $(UV) pyproject.toml uv.lock
	@# bytecode compiled once at install: with PYTHONDONTWRITEBYTECODE set (as on these machines) every
	@# process would otherwise compile Great Expectations, Prefect and pandas from source again
	$(UV) sync --frozen --compile-bytecode --python $(VENV)/bin/python
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)  ## synthesize a 3-site consortium and run the nightly flow on it
	@# exit 1 means "finished, something quarantined": the demo plants defects on purpose
	$(VENV)/bin/cohortpool demo --out $${OUT:-demo_out} || [ $$? -eq 1 ]

test: $(STAMP)  ## the whole suite, as CI runs it
	$(VENV)/bin/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test-fast: $(STAMP)  ## unit tests only
	$(VENV)/bin/python -m pytest -n 2 -m "not integration" tests/unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src flows tests benchmarks
	$(VENV)/bin/ruff format --check src flows tests benchmarks
	$(VENV)/bin/mypy

bench: $(STAMP)  ## every benchmark with its default size (long: tens of minutes); see benchmarks/RESULTS.md
	set -e; for script in benchmarks/bench_*.py; do echo "== $$script"; $(VENV)/bin/python $$script; done

clean:
	rm -rf $(VENV) demo_out .pytest_cache
