# `make test` and `make train` install everything on first use into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: install test test-all train report lint format clean

$(BIN)/medssl-installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/medssl-installed

test: install  ## the fast suite
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: install  ## everything, slow tests included
	$(BIN)/python -m pytest $(PYTEST_ARGS)

train: install  ## the default experiment; pass overrides with ARGS="method=vicreg ..."
	$(BIN)/python train.py $(ARGS)

report: install  ## tables, figures and HTML of a sweep: make report SWEEP=multirun/label_efficiency/pneumoniamnist [ARGS="--metric val/linear/auroc"]
	$(BIN)/python -m medssl.cli.report $(SWEEP) $(ARGS)

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
