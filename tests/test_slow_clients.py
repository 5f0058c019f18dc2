"""Slow clients (a body announced, a few bytes sent, then silence) cannot starve the service:
liveness probes keep answering, directly under gunicorn and behind the shipped nginx."""

import runpy
import socket
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import requests

from prometheus_helpers import REPO, host_port
from proxy_helpers import running_nginx
from serving_helpers import serve

# The liveness probe's timeoutSeconds in deploy/kubernetes (a kubelet gives up after it).
PROBE_TIMEOUT = 3.0
PROBES = 10
PROBE_EVERY = 0.5
STALLED_BODY = b'{"Time": 1'
READ_TIMEOUT = runpy.run_path(str(REPO / "src/fraud_detection/gunicorn_conf.py"))["READ_TIMEOUT"]


@contextmanager
def slow_clients(url: str, count: int) -> Iterator[list[socket.socket]]:
    """`count` connections that announce a 100,000-byte body and send 10 bytes of it."""
    host, port = urllib.parse.urlsplit(url).netloc.split(":")
    with ExitStack() as stack:
        clients = []
        for _ in range(count):
            client = stack.enter_context(socket.create_connection((host, int(port))))
            client.sendall(
                b"POST /predict HTTP/1.1\r\nHost: fraud\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n" + STALLED_BODY
            )
            clients.append(client)
        yield clients


def probe_failures(url: str) -> list[str]:
    """Probe /v2/health/live the way a kubelet does; every probe that failed in time."""
    failures = []
    for _ in range(PROBES):
        try:
            status = requests.get(f"{url}/v2/health/live", timeout=PROBE_TIMEOUT).status_code
            if status != 200:
                failures.append(f"status {status}")
        except requests.RequestException as exc:
            failures.append(type(exc).__name__)
        time.sleep(PROBE_EVERY)
    return failures


def test_stalled_bodies_leave_the_workers_free_for_probes(
    trained_store: Path, tmp_path: Path
) -> None:
    # Six stalled clients took every thread of the former 2 workers x 2 threads.
    with serve(trained_store, tmp_path) as url, slow_clients(url, 6) as clients:
        assert probe_failures(url) == []
        # The read timeout ends each stalled request with a 400 and frees its thread.
        for client in clients:
            client.settimeout(READ_TIMEOUT + 20)
            assert client.recv(64).startswith(b"HTTP/1.1 400"), "stalled request never ended"


def test_behind_nginx_many_stalled_clients_never_reach_the_workers(
    trained_store: Path, tmp_path: Path
) -> None:
    with (
        serve(trained_store, tmp_path) as url,
        running_nginx([host_port(url)]) as proxy,
        slow_clients(proxy, 100),
    ):
        assert probe_failures(proxy) == []
        assert probe_failures(url) == []
