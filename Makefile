# The two commands of the README. Both create .venv if missing and install from the project's
# own files (pyproject.toml + constraints.txt); later calls reuse the environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DRPO_HOME ?= $(CURDIR)/.drpo
export DO_NOT_TRACK := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_LOGGING_LEVEL ?= INFO

# The main job (override: make run RUN_ROWS=200000): simulate 8 days of logs, backfill the
# first 7 (ingest, validate, retrain on them), then the nightly flow for the 8th.
RUN_ROWS ?= 50000
RUN_STEPS ?= 3000
LOGS := $(DRPO_HOME)/logs/live

.PHONY: install run ui test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/drpo simulate --scenario medium --days 8 --rows-per-day $(RUN_ROWS) --seed 0 --start-date 2026-01-01 --out $(LOGS)
	$(BIN)/drpo backfill --start 2026-01-01 --end 2026-01-07 --logs $(LOGS) --train-steps $(RUN_STEPS)
	$(BIN)/drpo run --date 2026-01-08 --logs $(LOGS) --train-steps $(RUN_STEPS)
	$(BIN)/drpo champion

# The MLflow UI (http://127.0.0.1:5055) and the Prefect UI (http://127.0.0.1:4200) on DRPO_HOME.
ui: $(STAMP)
	$(BIN)/drpo ui

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[bench]'
	$(BIN)/python benchmarks/simulate_bench.py

clean:
	rm -rf $(DRPO_HOME)
