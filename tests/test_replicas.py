"""Many replicas on one machine, as a cluster would run them: three independent services
(own processes, caches, metrics folders) sharing one S3 store (moto over HTTP) and one
PostgreSQL log, behind the shipped nginx, scraped by the real Prometheus. Under a paced load
through the balancer a new champion is promoted, then rolled back."""

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
import yaml
from click.testing import CliRunner

from fraud_detection.cli import cli
from postgres_helpers import PrivatePostgres
from prometheus_helpers import api, host_port, localized_config, query, running_prometheus
from proxy_helpers import running_nginx
from serving_helpers import serve, train_into, transaction
from waiting import wait_for

pytestmark = pytest.mark.long  # an end-to-end run: see pyproject.toml

REPLICAS = 3
RELOAD_INTERVAL = 2.0
CLIENTS = 4
PACE = 0.05  # seconds between one client's requests (about 70 requests/s in all measured)
RATE_WINDOW = 30  # seconds of the rate compared with what the clients sent
# Set by benchmarks/replicas_bench.py: where the test leaves its figures.
FIGURES_ENV = "FRAUD_REPLICA_FIGURES"


@dataclass
class Load:
    """Paced clients through the balancer; every answer with the time it came."""

    url: str
    answered: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, number: int) -> None:
        with requests.Session() as session:
            for i in range(int(600 / PACE)):  # bounded: ten minutes at most
                if self.stop.is_set():
                    return
                body = transaction(transaction_id=f"c{number}-{i}")
                try:
                    answer = session.post(f"{self.url}/predict", json=body, timeout=10)
                    ok = answer.status_code == 200
                    failure = "" if ok else f"{answer.status_code} {answer.text[:200]}"
                except requests.RequestException as exc:
                    failure = type(exc).__name__
                with self.lock:
                    if failure:
                        self.failures.append(failure)
                    else:
                        self.answered.append(time.time())
                time.sleep(PACE)

    def sent_between(self, start: float, end: float) -> int:
        with self.lock:
            return sum(start < t <= end for t in self.answered)


def champion_version(url: str) -> int | None:
    try:
        return int(requests.get(f"{url}/models", timeout=5).json()["champion"]["version"])
    except (requests.RequestException, KeyError, TypeError, ValueError):
        return None


def convergence(replicas: list[str], version: int, since: float) -> list[float]:
    """Seconds from `since` until each replica serves `version` (polled every 0.1 s)."""
    seconds: list[float | None] = [None] * len(replicas)
    deadline = since + RELOAD_INTERVAL + 30
    while None in seconds and time.time() < deadline:
        for i, url in enumerate(replicas):
            if seconds[i] is None and champion_version(url) == version:
                seconds[i] = time.time() - since
        time.sleep(0.1)
    assert None not in seconds, f"replicas never served v{version}: {seconds}"
    return [s for s in seconds if s is not None]


def query_at(prom: str, promql: str, at: float) -> list[dict[str, Any]]:
    """An instant query evaluated at time `at`."""
    return list(api(prom, "query", query=promql, time=f"{at:.3f}")["result"])


def cli_ok(*args: str) -> None:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output


def log_rows(database_url: str) -> int:
    with psycopg.connect(database_url.replace("+psycopg", "")) as db:
        (rows,) = db.execute("SELECT count(*) FROM predictions").fetchone() or (0,)
    return int(rows)


@pytest.fixture
def replicas(
    s3_bucket: str, private_postgres: PrivatePostgres, tmp_path: Path
) -> Iterator[tuple[str, list[str], str]]:
    """(store URI, replica URLs, database URL): v1 champion, v2 registered, three services."""
    store = f"s3://{s3_bucket}/fraud"
    train_into(store, promote=True)
    train_into(store)
    folders = [tmp_path / f"replica-{i}" for i in range(REPLICAS)]
    for folder in folders:
        folder.mkdir()
    with private_postgres.database() as database_url, ExitStack() as stack:
        urls = [
            stack.enter_context(
                serve(
                    store,  # type: ignore[arg-type]  # serve passes it through as text
                    folder,
                    workers=1,
                    DATABASE_URL=database_url,
                    FRAUD_RELOAD_INTERVAL=str(RELOAD_INTERVAL),
                )
            )
            for folder in folders
        ]
        yield store, urls, database_url


def test_replicas_follow_promotion_and_rollback_without_a_failed_request(
    replicas: tuple[str, list[str], str], tmp_path: Path
) -> None:
    store, urls, database_url = replicas
    config = localized_config(tmp_path / "prom", {"fraud-detection": host_port(urls[0])})
    scrape = yaml.safe_load(config.read_text())
    (job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "fraud-detection"]
    job["static_configs"] = [{"targets": [host_port(url) for url in urls]}]
    config.write_text(yaml.safe_dump(scrape, sort_keys=False))
    with running_prometheus(config) as prom, running_nginx([host_port(u) for u in urls]) as lb:
        wait_for(
            lambda: len(query(prom, 'up{job="fraud-detection"} == 1')) == REPLICAS,
            what="Prometheus scrapes every replica",
        )
        load = Load(lb)
        clients = [threading.Thread(target=load.client, args=(n,)) for n in range(CLIENTS)]
        started = time.time()
        for client in clients:
            client.start()
        try:
            assert [champion_version(url) for url in urls] == [1] * REPLICAS
            promoted = time.time()
            cli_ok("models", "promote", "2", "--store", store)
            to_new = convergence(urls, 2, promoted)
            rolled_back = time.time()
            cli_ok("models", "rollback", "--store", store)
            to_old = convergence(urls, 1, rolled_back)
            # Long enough under load for a full rate window.
            wait_for(lambda: time.time() - started > RATE_WINDOW + 3, timeout=RATE_WINDOW + 5)
            end = time.time() - 2  # the last scrapes are in
            promql = (
                'sum(rate(fraud_prediction_latency_seconds_count{endpoint="predict"}'
                f"[{RATE_WINDOW}s]))"
            )
            (sample,) = query_at(prom, promql, end)
            prometheus_rate = float(sample["value"][1])
            sent_rate = load.sent_between(end - RATE_WINDOW, end) / RATE_WINDOW
        finally:
            load.stop.set()
            for client in clients:
                client.join()
    answered = len(load.answered)
    wait_for(lambda: log_rows(database_url) >= answered, timeout=60, what="log rows written")
    rows = log_rows(database_url)
    figures = {
        "replicas": REPLICAS,
        "requests": answered + len(load.failures),
        "answered": answered,
        "failures": len(load.failures),
        "log_rows": rows,
        "promotion_s": to_new,
        "rollback_s": to_old,
        "prometheus_rate": prometheus_rate,
        "sent_rate": sent_rate,
        "reload_interval_s": RELOAD_INTERVAL,
    }
    if os.environ.get(FIGURES_ENV):
        Path(os.environ[FIGURES_ENV]).write_text(json.dumps(figures))
    assert load.failures == []
    assert rows == answered, figures
    assert max(to_new + to_old) <= RELOAD_INTERVAL + 5, figures
    assert abs(prometheus_rate - sent_rate) <= 0.05 * sent_rate, figures
