# The two set-up commands of the README: `make run` (train and serve) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint venv dev-venv system-tools

# pip runs --quiet (its bars wrap in a log), so each install step first says what it does.
$(BIN)/fraud: requirements.txt pyproject.toml
	@echo "Creating $(VENV) and installing the service's dependencies (about 30 s, quiet)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -e .
	@echo "Installed: $(BIN)/fraud (source $(VENV)/bin/activate to call it as fraud)"
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements-mlflow.txt $(BIN)/fraud
	@echo "Installing the test tools into $(VENV) (quiet)..."
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# Debian packages the tests run for real, as command:package: promtool, Prometheus and the
# Pushgateway (tests/test_ops_files.py and the monitoring tests), nginx (the buffering proxy),
# podman with runc, netavark, iptables (its port mapping) and mmdebstrap (tests/test_image.py),
# podman-compose (docker-compose.yml), Chromium and its driver (the review page's browser tests,
# driven by Playwright from PyPI on /usr/bin/chromium: no browser is downloaded). Installed only when missing and when allowed without a
# prompt: as root (a fresh CI machine) or with passwordless sudo (GitHub's runners). Otherwise
# the tests name what to install, and fail rather than skip when CI is set.
SYSTEM_TOOLS := promtool:prometheus prometheus-pushgateway:prometheus-pushgateway nginx:nginx \
  podman:podman runc:runc netavark:netavark iptables:iptables mmdebstrap:mmdebstrap \
  podman-compose:podman-compose chromium:chromium chromedriver:chromium-driver

system-tools:
	@missing=""; \
	for pair in $(SYSTEM_TOOLS); do \
	  PATH="$$PATH:/usr/sbin:/sbin:/usr/lib/podman" command -v "$${pair%%:*}" >/dev/null 2>&1 || \
	    missing="$$missing $${pair#*:}"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "missing Debian packages:$$missing (apt-get install them)"; exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1; then \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $$missing; \
	fi

# The MLflow tracking server for tests/test_mlflow_mirror.py, in an environment of its own.
.venv-mlflow/bin/mlflow: requirements-mlflow-server.txt
	@echo "Creating .venv-mlflow with the MLflow tracking server for the tests (quiet)..."
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

test: $(VENV)/.dev system-tools .venv-mlflow/bin/mlflow
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/bandit -q -r src -ll
	$(BIN)/pytest --durations=15
