# Two commands for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
DATA_DIR ?= .imagesearch
PYTEST_ARGS ?=

.PHONY: install install-export run test lint fmt bench clean

# Runtime + dev tools. The stamp is rebuilt when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# The export extra: torch + open_clip, pinned (see README, "Model export"). Needed by the parity tests.
$(VENV)/.installed-export: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[dev,export]'
	touch $@

install: $(VENV)/.installed

install-export: $(VENV)/.installed-export

run: install
	$(BIN)/imagesearch dev --port $(PORT) --data-dir $(DATA_DIR)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install install-export lint
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam
