"""A real MLflow tracking server for tests, from its own environment (`make mlflow-server`
builds .venv-mlflow: the server's pins conflict with the service's gunicorn)."""

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from prometheus_helpers import free_port
from waiting import wait_for

REPO = Path(__file__).resolve().parents[1]
SERVER = REPO / ".venv-mlflow" / "bin" / "mlflow"


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def running_mlflow(folder: Path) -> Iterator[str]:
    """`mlflow server` on a free loopback port (SQLite backend, artifacts in `folder`)."""
    if not SERVER.exists():
        message = f"{SERVER} missing: run `make mlflow-server` (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        str(SERVER), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination", str(folder / "artifacts"),
    ]  # fmt: skip
    log = folder / "mlflow.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: proc.poll() is not None or _answers(url), timeout=120, what=url)
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited:\n{log.read_text()[-3000:]}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
