# `make test` and `make train` install everything on first use into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: help install test test-fast test-all train report tuned-study lint format clean

$(BIN)/medssl-installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

install: $(BIN)/medssl-installed

# Tests run on every core (pytest-xdist), a module's tests on one worker, so that a module's
# fixture (a finished run, two gloo processes) is made once. Not loadgroup: with pytest 9.2 it
# silently stops grouping (pytest-xdist issue 1386).
XDIST := -n auto --dist loadscope

test: install  ## the fast suite, what CI runs (pytest -m "not slow")
	$(BIN)/python -m pytest -m "not slow" $(XDIST) $(PYTEST_ARGS)

test-fast: install  ## unit tests only, for the edit loop (no integration: CLIs, end-to-end runs)
	$(BIN)/python -m pytest -m "not slow and not integration" $(XDIST) $(PYTEST_ARGS)

test-all: install  ## everything, slow tests included
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

train: install  ## the default experiment; pass overrides with ARGS="method=vicreg ..."
	$(BIN)/python train.py $(ARGS)

report: install  ## tables, figures and HTML of a sweep: make report SWEEP=multirun/label_efficiency/pneumoniamnist [ARGS="--metric val/linear/auroc"] [ARGS=--wandb: also to W&B, docs/wandb.md]
	$(BIN)/python -m medssl.cli.report $(SWEEP) $(ARGS)

tuned-study: install  ## label-efficiency study, each method's recipe searched on val first: make tuned-study ARGS="dataset=breastmnist backbone=smallcnn"
	$(BIN)/python -m medssl.cli.tuned_study $(ARGS)

lint: install  ## ruff check and format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install  ## ruff fixes and formats
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:  ## removes .venv, outputs and multirun
	rm -rf $(VENV) outputs multirun .pytest_cache
