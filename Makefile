# GeoJEPA: `make demo` and `make test` do all set-up on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo-out

.PHONY: setup demo test test-slow lint bench tables-forecast tables-detect clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/geojepa demo --out $(DEMO_OUT)

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src/geojepa

test: lint
	$(BIN)/pytest -q -m "not slow"

test-slow: setup
	$(BIN)/pytest -q -m slow

bench: setup
	$(BIN)/python benchmarks/run_all.py

# the forecasting and transfer tables of docs/results/ (long; pretraining runs are cached)
tables-forecast: setup
	PY=$(BIN)/python sh benchmarks/tables_forecast.sh

tables-detect: setup
	PY=$(BIN)/python sh benchmarks/tables_detect.sh

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache
