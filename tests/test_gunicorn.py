"""The service under real gunicorn with two workers: metrics add up across workers."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from serving_helpers import train_into, transaction


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """`fraud serve --workers 2` on a free port, against a store made by `fraud train`."""
    store = tmp_path / "store"
    train_into(store, promote=True)
    port = free_port()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
        "FRAUD_SERVING_CACHE": str(tmp_path / "cache"),
    }
    cmd = [
        sys.executable,
        "-m",
        "fraud_detection",
        "serve",
        "--store",
        str(store),
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, proc)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def wait_until_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            pytest.fail(proc.stderr.read().decode() if proc.stderr else "service exited")
        time.sleep(0.1)
    pytest.fail("service did not become ready in 60 s")


def metric_sum(text: str, name: str) -> float:
    pattern = re.compile(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", re.M)
    return sum(float(v) for v in pattern.findall(text))


def test_two_workers_count_every_request_once(served: str) -> None:
    session = requests.Session()
    rows = 0
    for i in range(40):
        batch = 1 + i % 4
        body = {"instances": [transaction()] * batch} if batch > 1 else transaction()
        assert session.post(f"{served}/predict", json=body, timeout=5).status_code == 200
        rows += batch
    for _ in range(7):
        assert (
            session.post(f"{served}/predict", json=transaction(V1="x"), timeout=5).status_code
            == 400
        )
    for _ in range(3):
        assert session.get(f"{served}/health", timeout=5).status_code == 200
    text = session.get(f"{served}/metrics", timeout=5).text
    assert metric_sum(text, "fraud_predictions_total") == rows
    assert metric_sum(text, "fraud_prediction_latency_seconds_count") == 40
    assert metric_sum(text, "fraud_request_errors_total") == 7
    assert 'fraud_model_info{alias="champion",model_version="1"} 1.0' in text
    health = re.search(
        r'^flask_http_request_duration_seconds_count\{[^}]*url_rule="/health"[^}]*\} (\S+)$',
        text,
        re.M,
    )
    assert health and float(health.group(1)) == 3
    assert 'url_rule="/predict"' not in text, "scoring routes have their own latency metric"
