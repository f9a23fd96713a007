# Every target CI runs is here; `.ci/run` calls `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint unit screenshots bench bench-intake bench-rebuild bench-propagation bench-reconcile clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "invsync needs Python 3.11+")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,sandbox]'
	touch $(STAMP)

run: $(STAMP)  ## the service on the embedded default (or the configured servers)
	$(BIN)/invsync run

test: lint  ## the whole suite: lint, types, layers, then every test
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest tests/unit

screenshots: $(STAMP)  ## the console's browser tests, refreshing docs/console/*.png (needs chromium)
	INVSYNC_SCREENSHOTS=docs $(BIN)/pytest tests/browser -q

bench: $(STAMP)  ## ledger throughput against the library's own ceiling
	$(BIN)/python benchmarks/ledger.py

bench-intake: $(STAMP)  ## webhook intake against a bare Starlette+HMAC endpoint on uvloop+httptools (needs wrk)
	$(BIN)/python -m benchmarks.intake

bench-rebuild: $(STAMP)  ## a rebuild of 1,000,000 events against the raw decode rate
	$(BIN)/python benchmarks/rebuild.py

bench-propagation: $(STAMP)  ## consistency window and calls per hot SKU, sandbox channels
	$(BIN)/python -m benchmarks.propagation

bench-reconcile: $(STAMP)  ## a 20,000-SKU catalogue reconciled: calls and push latency against baselines
	$(BIN)/python -m benchmarks.reconcile

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
