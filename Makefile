# Plansheet developer commands. Every target creates and uses .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

AXE := tests/accessibility
.PHONY: demo test lint format bench system-deps test-packages clean

$(STAMP): pyproject.toml devtools/sheets_standin/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e devtools/sheets_standin
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/plansheet demo --out build/demo  # then serves the dashboard on 127.0.0.1:8050 until Ctrl+C

system-deps:
	bash .ci/system-deps.sh

# The tests' npm packages, pinned by their lock files (axe-core for the dashboard's every-page check):
# `npm ci` only when node_modules is missing or older than the lock file. Without npm, the tests that
# need them say so (and fail under CI=true).
test-packages: system-deps
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "test-packages: npm is missing; the accessibility tests will say so"; \
	elif [ ! -f $(AXE)/node_modules/.package-lock.json ] || [ $(AXE)/package-lock.json -nt $(AXE)/node_modules/.package-lock.json ]; then \
		npm ci --prefix $(AXE) --no-audit --no-fund; \
	else \
		echo "test-packages: $(AXE) is up to date"; \
	fi

test: $(STAMP) system-deps test-packages
	$(BIN)/python -m pytest -n auto --durations=25  # the slowest tests, to keep the suite quick

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/consolidate.py
	$(BIN)/python benchmarks/functions.py
	$(BIN)/python benchmarks/service.py
	$(BIN)/python benchmarks/gsheets.py
	$(BIN)/python benchmarks/functions_http.py
	$(BIN)/python benchmarks/actuals_import.py
	$(BIN)/python benchmarks/outcomes_import.py
	$(BIN)/python benchmarks/spend.py
	$(BIN)/python benchmarks/spend_import.py
	$(BIN)/python benchmarks/scale.py

clean:
	rm -rf build .pytest_cache
