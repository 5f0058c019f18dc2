"""The service under real gunicorn with two workers: metrics add up across workers."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from prometheus_helpers import free_port
from serving_helpers import metric_sum, serve, train_into, transaction
from waiting import wait_for


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """`fraud serve --workers 2` on a free port, against a store made by `fraud train`."""
    store = tmp_path / "store"
    train_into(store, promote=True)
    with serve(store, tmp_path) as url:
        yield url


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


@pytest.fixture(scope="module")
def service(trained_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service on the shared trained store, for tests that change nothing in it."""
    with serve(trained_store, tmp_path_factory.mktemp("gunicorn-errors")) as url:
        yield url


def raw_exchange(url: str, *pieces: bytes, pause: float = 0.0) -> bytes:
    """Send `pieces` as they are, `pause` seconds apart; everything answered until close."""
    host, port = urlsplit(url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(pause)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def raw_answer(url: str, request: bytes) -> tuple[int, dict[str, str], object]:
    """Send `request` as it is; gunicorn's status, headers and JSON body."""
    head, _, body = raw_exchange(url, request).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


MANY_HEADERS = b"".join(b"X-%d: y\r\n" % i for i in range(120))


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "too_large"),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n" + MANY_HEADERS + b"\r\n", 431, "too_large"),
        (b"GARBAGE\r\n\r\n", 400, "invalid_request"),
        (b"POST /predict HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, "invalid_request"),
    ],
)
def test_gunicorn_s_own_errors_answer_in_the_service_s_json_format(
    service: str, request_bytes: bytes, status: int, code: str
) -> None:
    answered, headers, body = raw_answer(service, request_bytes)
    assert answered == status
    assert headers["content-type"] == "application/json"
    assert isinstance(body, dict) and body["error"]["code"] == code
    assert body["error"]["message"] and body["error"]["field"] is None


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /v2/" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n" + MANY_HEADERS + b"\r\n", 431),
        (b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
    ],
)
def test_gunicorn_s_own_errors_under_v2_take_the_inference_protocol_shape(
    service: str, request_bytes: bytes, status: int
) -> None:
    answered, headers, body = raw_answer(service, request_bytes)
    assert answered == status
    assert headers["content-type"] == "application/json"
    assert isinstance(body, dict) and isinstance(body["error"], str) and body["error"]


def test_a_request_arriving_in_pieces_is_served_whole(service: str) -> None:
    body = json.dumps(transaction()).encode()
    head = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    pieces = [head[:20], head[20:], body[:50], body[50:]]
    answer = raw_exchange(service, *pieces, pause=0.3)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["model_version"] == "1"


def test_pipelined_requests_on_one_connection_are_each_answered(service: str) -> None:
    live = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = raw_exchange(service, live * 3 + last)
    assert answer.count(b"HTTP/1.1 200 OK") == 4
    assert answer.endswith(b'{"ready":true}')


def _loaded(pid: int, library: str) -> bool:
    """Whether process `pid` has mapped a shared library whose path contains `library`."""
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:  # gone already
        return False


def test_a_worker_told_to_stop_while_it_starts_stops_at_once(
    trained_store: Path, tmp_path: Path
) -> None:
    # The master never imports onnxruntime: a worker that has mapped it is loading the
    # application. A SIGTERM then used to find the master's handler, copied by fork, and be
    # lost: the worker served on until the master killed it, graceful_timeout (20 s) later.
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    environment["FRAUD_SERVING_CACHE"] = str(tmp_path / "cache")
    environment["DATABASE_URL"] = f"sqlite:///{tmp_path / 'predictions.db'}"
    cmd = [sys.executable, "-m", "fraud_detection", "serve", "--store", str(trained_store)]
    cmd += ["--port", str(free_port()), "--workers", "2"]
    proc = subprocess.Popen(cmd, env=environment, stdout=subprocess.DEVNULL)
    try:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        wait_for(
            lambda: any(_loaded(int(pid), "onnxruntime") for pid in children.read_text().split()),
            timeout=60,
            interval=0.01,
            what="a worker loading the application",
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
