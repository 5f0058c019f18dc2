"""Shared helpers for serving tests: a store made by the training code, the service under
gunicorn, metric sums."""

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from prometheus_client import REGISTRY

from fraud_detection.cli import cli
from fraud_detection.schema import FEATURES
from prometheus_helpers import free_port
from waiting import wait_for


def train_into(store: str | Path, *, seed_rows: int = 20_000, promote: bool = False) -> None:
    """Run `fraud train --synthetic` into `store` (fast: few trees)."""
    args = ["train", "--synthetic", "--synthetic-rows", str(seed_rows), "--store", str(store)]
    args += ["--trees", "8", "--promote" if promote else "--no-promote"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output


def transaction(**overrides: object) -> dict[str, object]:
    """A plausible transaction body with every feature field."""
    body: dict[str, object] = {name: 0.1 * i for i, name in enumerate(FEATURES)}
    body["Amount"] = 42.5
    body.update(overrides)
    return body


@contextmanager
def serve(store: Path, tmp_path: Path, workers: int = 2, **env: str) -> Iterator[str]:
    """`fraud serve` under gunicorn on a free port, private state in tmp_path; yields its URL."""
    port = free_port()
    environment = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
        "FRAUD_SERVING_CACHE": str(tmp_path / "cache"),
        "FRAUD_LOG_SPOOL_DIR": str(tmp_path / "log-spool"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'predictions.db'}",
        **env,
    }
    cmd = [sys.executable, "-m", "fraud_detection", "serve", "--store", str(store)]
    cmd += ["--port", str(port), "--workers", str(workers)]
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(cmd, env=environment, stdout=subprocess.DEVNULL, stderr=stderr)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, proc, log)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def wait_until_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll readiness; fail with the service's log if it exits or takes over 60 s."""

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(log.read_text())
        try:
            return requests.get(f"{url}/v2/health/ready", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_for(ready, timeout=60, what=f"{url} ready")


def metric_sum(text: str, name: str) -> float:
    """The sum of every sample of `name` in a Prometheus exposition."""
    pattern = re.compile(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", re.M)
    return sum(float(v) for v in pattern.findall(text))


def sample(name: str, **labels: str) -> float:
    """This process's value of one metric sample (0 when it was never set)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scored(version: str, variant: str) -> float:
    """Transactions this process scored with `version` as `variant`, both decisions."""
    return sum(
        sample("fraud_predictions_total", model_version=version, variant=variant, decision=d)
        for d in ("fraud", "legit")
    )
