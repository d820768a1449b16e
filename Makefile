# Plansheet developer commands. Every target creates and uses .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint format bench system-deps clean

$(STAMP): pyproject.toml devtools/sheets_standin/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e devtools/sheets_standin
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/plansheet demo --out build/demo  # then serves the dashboard on 127.0.0.1:8050 until Ctrl+C

system-deps:
	bash .ci/system-deps.sh

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -n auto

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

clean:
	rm -rf build .pytest_cache
