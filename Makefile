# Two commands for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
DATA_DIR ?= .imagesearch
PYTEST_ARGS ?=

.PHONY: install install-export run test fuzz lint fmt bench clean sam-tools sam-validate sam-build browser pgbouncer

# Runtime + dev tools, and OCR's engine (functions/ocr/requirements.txt, without its dependencies: it would
# bring OpenCV's GUI build). The stamp is rebuilt when either file changes.
$(VENV)/.installed: pyproject.toml functions/ocr/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps -r functions/ocr/requirements.txt
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

# --- deployment (template.yaml, docs/deploy.md) ---
# The SAM CLI pins many packages, so it lives in its own virtualenv. `sam build` needs the runtime's
# python3.12 on PATH: .venv-lambda is that Python with boto3 and nothing else, as in the Lambda runtime;
# `imagesearch invoke` and tests/deploy run the built handlers with it. Where python3.12 is not on PATH
# but pyenv has it (these machines: PYENV_VERSION=3.11.7:3.12.1), pyenv's is used.
PYTHON312 ?= $(shell python3.12 -c '' 2>/dev/null && echo python3.12 || echo 'env PYENV_VERSION=3.12.1 python3.12')
SAM_CLI_VERSION := 1.170.0
LAMBDA_BOTO3_VERSION := 1.44.8
SAM := .venv-sam/bin/sam
SAM_ENV := PATH="$(CURDIR)/.venv-lambda/bin:$$PATH" SAM_CLI_TELEMETRY=0

.venv-sam/.installed:
	$(PYTHON312) -m venv .venv-sam
	.venv-sam/bin/python -m pip install -q --upgrade pip
	.venv-sam/bin/python -m pip install -q 'aws-sam-cli==$(SAM_CLI_VERSION)'
	touch $@

.venv-lambda/.installed:
	$(PYTHON312) -m venv .venv-lambda
	.venv-lambda/bin/python -m pip install -q --upgrade pip
	.venv-lambda/bin/python -m pip install -q 'boto3==$(LAMBDA_BOTO3_VERSION)'
	touch $@

sam-tools: .venv-sam/.installed .venv-lambda/.installed

sam-validate: sam-tools
	$(SAM_ENV) $(SAM) validate --lint

# Into .aws-sam/build, for `imagesearch invoke`, `sam local` and `sam deploy`.
sam-build: sam-tools
	$(SAM_ENV) $(SAM) build --parallel --cached

# Debian's Chromium for the browser test (Playwright drives it; its own browser download cannot work here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for tests/web"; \
		SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		$$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium >/dev/null; }; }

# Debian's PgBouncer, the local stand-in for RDS Proxy (tests/reliability/test_proxy.py starts it).
pgbouncer:
	@command -v pgbouncer >/dev/null 2>&1 || test -x /usr/sbin/pgbouncer || { \
		echo "installing Debian's pgbouncer for tests/reliability/test_proxy.py"; \
		SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		$$SUDO apt-get install -y -q pgbouncer >/dev/null 2>&1 || \
		{ $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q pgbouncer >/dev/null; }; }

test: install install-export sam-tools browser pgbouncer lint
	$(BIN)/pytest $(PYTEST_ARGS)

# The property tests with fresh random examples, ten times as many as the suite's fixed ones (about 1 min).
fuzz: install install-export
	IMAGESEARCH_FUZZ=1 $(BIN)/pytest tests/model/test_model_imaging.py tests/model/test_model_tokenizer.py tests/reliability/test_fuzz_api.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .venv-sam .venv-lambda .pytest_cache .mypy_cache .ruff_cache .aws-sam
