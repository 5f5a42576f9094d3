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

# The main job's size (override: make run RUN_ROWS=200000).
RUN_DAYS ?= 7
RUN_ROWS ?= 50000
RUN_STEPS ?= 3000
LOGS := $(DRPO_HOME)/logs/medium-week
RUN_OUT := $(DRPO_HOME)/runs/drpo-medium

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/drpo simulate --scenario medium --days $(RUN_DAYS) --rows-per-day $(RUN_ROWS) --seed 0 --out $(LOGS)
	$(BIN)/drpo train --data $(LOGS) --algorithm drpo --steps $(RUN_STEPS) --seed 0 --output $(RUN_OUT) --overwrite
	$(BIN)/drpo evaluate --policy $(RUN_OUT)/policy.pt --logs $(LOGS)

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[bench]'
	$(BIN)/python benchmarks/simulate_bench.py

clean:
	rm -rf $(DRPO_HOME)
