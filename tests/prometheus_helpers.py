"""The real Prometheus and Pushgateway for tests: start on free loopback ports, poll, stop.

    with running_pushgateway() as gateway, running_prometheus(config) as prom:
        push_metrics(gateway, "fraud-monitor", "model_drift_detected 1\n", model="m")
        wait_for(lambda: query(prom, "model_drift_detected"), timeout=30)

Binaries come from Debian's `prometheus` and `prometheus-pushgateway` packages (`make test`
installs them when it can); `require_binary` decides between skip and fail.
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from waiting import wait_for

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0
ATTEMPTS = 3
"""Tries with a fresh port each: another process may take a free port before we bind it."""


class PrometheusQueryError(RuntimeError):
    """The HTTP API answered status "error" (a bad PromQL expression, for instance)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


def require_binary(name: str, packages: str = "prometheus and prometheus-pushgateway") -> str:
    """The path of `name`; skip the test when missing, but fail under CI (never a silent skip)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path:
        return path
    message = (
        f"{name} not found: install the Debian packages {packages} "
        "(`make test` does it when run as root with apt-get)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def _serve(name: str, argv: Callable[[int], list[str]], log: Path) -> Iterator[str]:
    """Run the binary until its /-/ready answers on a free port; yield its URL; stop it."""
    for attempt in range(1, ATTEMPTS + 1):
        port = free_port()
        with log.open("wb") as out:
            process = subprocess.Popen(argv(port), stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(
                lambda: process.poll() is not None or _answers(f"{url}/-/ready"),  # noqa: B023
                timeout=START_TIMEOUT,
                what=f"{name} ready at {url}",
            )
        except TimeoutError:
            _stop(process)
            raise RuntimeError(f"{name} not ready in {START_TIMEOUT} s:\n{_tail(log)}") from None
        if process.poll() is not None:
            if "address already in use" in _tail(log) and attempt < ATTEMPTS:
                continue
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{_tail(log)}")
        try:
            yield url
        finally:
            _stop(process)
        return


def _stop(process: "subprocess.Popen[bytes]") -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_prometheus(config: Path | None = None, *, log_level: str = "warn") -> Iterator[str]:
    """A real Prometheus with `config` (default: no targets), a temp TSDB; yields its URL."""
    binary = require_binary("prometheus")
    with tempfile.TemporaryDirectory(prefix="prometheus-test-") as tmp:
        work = Path(tmp)
        if config is None:
            config = work / "prometheus.yml"
            config.write_text("global:\n  scrape_interval: 1s\n")

        def argv(port: int) -> list[str]:
            return [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--log.level={log_level}",
            ]

        with _serve("prometheus", argv, work / "prometheus.log") as url:
            yield url


@contextmanager
def running_pushgateway(*, log_level: str = "warn") -> Iterator[str]:
    """A real Pushgateway with a temp persistence file (not Debian's default); yields its URL."""
    binary = require_binary("prometheus-pushgateway")
    with tempfile.TemporaryDirectory(prefix="pushgateway-test-") as tmp:
        work = Path(tmp)

        def argv(port: int) -> list[str]:
            return [
                binary,
                f"--web.listen-address=127.0.0.1:{port}",
                f"--persistence.file={work / 'pushgateway.data'}",
                f"--log.level={log_level}",
            ]

        with _serve("pushgateway", argv, work / "pushgateway.log") as url:
            yield url


def localized_config(
    dest: Path,
    targets: Mapping[str, str],
    *,
    source: Path = REPO / "prometheus.yml",
    interval: str | None = "1s",
) -> Path:
    """Copy prometheus.yml and its rule files to `dest` with each job pointed at `targets[job]`."""
    # Only the target addresses change (and the global intervals, unless `interval` is None,
    # so tests need not wait 15 s per scrape): a test runs the real scrape jobs and rules.
    config: dict[str, Any] = yaml.safe_load(source.read_text())
    dest.mkdir(parents=True, exist_ok=True)
    for rule_file in config.get("rule_files", []):
        shutil.copy(source.parent / rule_file, dest / rule_file)
    if interval is not None:
        config.setdefault("global", {}).update(
            scrape_interval=interval, evaluation_interval=interval
        )
    unknown = set(targets) - {job["job_name"] for job in config["scrape_configs"]}
    if unknown:
        raise KeyError(f"no such scrape job in {source}: {sorted(unknown)}")
    for job in config["scrape_configs"]:
        if job["job_name"] in targets:
            job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    path = dest / source.name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def host_port(url: str) -> str:
    """`127.0.0.1:9091` from `http://127.0.0.1:9091`: the form scrape targets take."""
    return urllib.parse.urlsplit(url).netloc


def api(prom_url: str, path: str, **params: str) -> Any:
    """GET /api/v1/<path> and return `data`; PrometheusQueryError when the status is error."""
    url = f"{prom_url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:  # 400/422 still carry the JSON error body
        body = exc.read()
    answer = json.loads(body)
    if answer.get("status") != "success":
        raise PrometheusQueryError(answer.get("errorType", "?"), answer.get("error", "?"))
    return answer["data"]


def query(prom_url: str, promql: str) -> list[dict[str, Any]]:
    """Instant query: the result vector as [{"metric": {...}, "value": [t, "v"]}, ...]."""
    data = api(prom_url, "query", query=promql)
    result = data["result"]
    if data["resultType"] in ("scalar", "string"):
        return [{"metric": {}, "value": result}]
    return list(result)


def push_metrics(gateway_url: str, job: str, text: str, **grouping: str) -> None:
    """PUT `text` (exposition format, newline-terminated) as the group job/<grouping...>."""
    path = "/metrics" + "".join(
        _grouping_segment(key, value) for key, value in {"job": job, **grouping}.items()
    )
    request = urllib.request.Request(
        gateway_url + path,
        data=text.encode(),
        method="PUT",
        headers={"Content-Type": "text/plain; version=0.0.4"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"push to {path}: {exc.code} {exc.read().decode()}") from None


def _grouping_segment(key: str, value: str) -> str:
    # The Pushgateway's URL form cannot carry "/" or an empty value except base64-encoded.
    if value and "/" not in value:
        return f"/{key}/{urllib.parse.quote(value, safe='')}"
    encoded = base64.urlsafe_b64encode(value.encode()).decode() or "="
    return f"/{key}@base64/{encoded}"
