"""Rollouts through three replicas, as a cluster runs them: three `fraud serve` services sharing
one S3 store (moto over HTTP) and one PostgreSQL log behind the shipped nginx, scraped by the
real Prometheus, with `fraud simulate` traffic through nginx. A challenger retrained on the same
data reaches 100% through every step; a version whose threshold flags ten times as much aborts
at the first step and every replica is back on the champion within FRAUD_RELOAD_INTERVAL + 2 s.
Both with no failed request and every answered row in the log."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import requests
import yaml
from click.testing import CliRunner

from fraud_detection.cli import cli
from fraud_detection.data import make_synthetic
from fraud_detection.registry import CANARY, Registry
from fraud_detection.schema import FEATURES
from fraud_detection.serving.model import load_from_store
from fraud_detection.store import open_store
from postgres_helpers import PrivatePostgres
from prometheus_helpers import host_port, localized_config, query, running_prometheus
from proxy_helpers import running_nginx
from serving_helpers import metric_sum, serve, train_into
from waiting import wait_for

pytestmark = pytest.mark.long  # an end-to-end run: see pyproject.toml

REPLICAS = 3
RELOAD_INTERVAL = 2.0
RATE = 300  # transactions per second, in requests of 10
MIN_ROWS = 300  # canary rows a step needs: PSI's small-sample bias, ~11 bins / rows, stays low
# Traffic is counted in rows, not seconds, so a slow machine only stretches it: the good version
# needs about 8,000 (300 canary rows at 5%, then 25% and 50%), the bad one 6,000 before its
# abort and rows after it to show none reach the canary once the replicas have reloaded.
GOOD_ROWS, BAD_ROWS = 18_000, 12_000
# Set by benchmarks/rollout_bench.py: where the test leaves its figures.
FIGURES_ENV = "FRAUD_ROLLOUT_FIGURES"


@dataclass(frozen=True)
class Stack:
    store: str
    replicas: list[str]
    balancer: str
    database_url: str
    prometheus: str


@pytest.fixture
def stack(s3_bucket: str, private_postgres: PrivatePostgres, tmp_path: Path) -> Iterator[Stack]:
    """v1 champion and v2 (the same synthetic data, retrained), three replicas, nginx and
    Prometheus scraping every replica."""
    store = f"s3://{s3_bucket}/fraud"
    train_into(store, promote=True)
    train_into(store)
    with private_postgres.database() as database_url, ExitStack() as stack:
        urls = []
        for i in range(REPLICAS):
            folder = tmp_path / f"replica-{i}"
            folder.mkdir()
            env = {"DATABASE_URL": database_url, "FRAUD_RELOAD_INTERVAL": str(RELOAD_INTERVAL)}
            urls.append(stack.enter_context(serve(store, folder, workers=1, **env)))  # type: ignore[arg-type]
        config = localized_config(tmp_path / "prom", {"fraud-detection": host_port(urls[0])})
        scrape = yaml.safe_load(config.read_text())
        (job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "fraud-detection"]
        job["static_configs"] = [{"targets": [host_port(url) for url in urls]}]
        config.write_text(yaml.safe_dump(scrape, sort_keys=False))
        prometheus = stack.enter_context(running_prometheus(config))
        balancer = stack.enter_context(running_nginx([host_port(u) for u in urls]))
        wait_for(
            lambda: len(query(prometheus, 'up{job="fraud-detection"} == 1')) == REPLICAS,
            what="Prometheus scrapes every replica",
        )
        yield Stack(store, urls, balancer, database_url, prometheus)


@contextmanager
def traffic(url: str, rows: int, prefix: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`fraud simulate` of `rows` transactions through the balancer, in the background; its
    summary once done."""
    out = tmp_path / f"{prefix}.json"
    command = [sys.executable, "-m", "fraud_detection", "simulate", "--url", url, "--synthetic"]
    command += ["--synthetic-rows", "100000", "--history-fraction", "0.5", "--limit", str(rows)]
    command += ["--rate", str(RATE), "--batch-size", "10", "--label-delay", "1"]
    command += ["--transaction-prefix", prefix, "--json"]
    summary: dict[str, Any] = {}
    with out.open("w") as sink:
        replay = subprocess.Popen(command, stdout=sink, stderr=subprocess.DEVNULL)
        try:
            yield summary
            assert replay.wait(timeout=600) == 0, out.read_text()
        finally:
            replay.kill()
    summary.update(json.loads(out.read_text()))


def step(stack: Stack) -> tuple[int, str]:
    """`fraud rollout step` as the hourly job runs it; its exit code and output."""
    args = ["rollout", "step", "--store", stack.store, "--database-url", stack.database_url]
    result = CliRunner().invoke(cli, [*args, "--prometheus", stack.prometheus, "--json"])
    return result.exit_code, result.stdout


def canary_on(url: str) -> str | None:
    canary = requests.get(f"{url}/models", timeout=5).json()["canary"]
    return canary["version"] if canary else None


def dropped(replicas: list[str], since: float) -> list[float]:
    """Seconds from `since` until each replica serves no canary (all polled every 0.1 s; a
    replica that had dropped it before the first poll counts at that poll)."""
    seconds: list[float | None] = [None] * len(replicas)
    deadline = time.time() + RELOAD_INTERVAL + 30
    while None in seconds and time.time() < deadline:
        for i, url in enumerate(replicas):
            if seconds[i] is None and canary_on(url) is None:
                seconds[i] = time.time() - since
        time.sleep(0.1)
    assert None not in seconds, f"replicas still serving the canary: {seconds}"
    return [s for s in seconds if s is not None]


def log_rows(database_url: str, where: str = "TRUE", *params: object) -> int:
    with psycopg.connect(database_url.replace("+psycopg", "")) as db:
        sql = f"SELECT count(*) FROM predictions WHERE {where}"
        (rows,) = db.execute(sql, params).fetchone() or (0,)
    return int(rows)


def server_errors(stack: Stack) -> float:
    return sum(
        metric_sum(requests.get(f"{url}/metrics", timeout=5).text, "fraud_request_errors_total")
        for url in stack.replicas
    )


def flagging_ten_times(registry: Registry, source: str) -> str:
    """A copy of version `source` at the threshold that flags ten times its own rate on this
    data: a version that would page the analysts ten times as often."""
    model, _ = load_from_store(registry, source)
    rows = make_synthetic(rows=50_000, seed=7)
    scores = model.score(rows[list(FEATURES)].to_numpy(np.float32))
    rate = float(np.mean(scores >= model.threshold))
    threshold = float(np.quantile(scores, 1 - 10 * rate))
    assert np.mean(scores >= threshold) >= 5 * rate > 0
    manifest = registry.manifest(source)
    files = {name: registry.read_file(source, name) for name in manifest["files"]}
    kept = {k: v for k, v in manifest.items() if k not in ("version", "created_at", "files")}
    made = registry.register(files, {**kept, "threshold": threshold}, reason="flags 10x")
    return str(made["version"])


def test_a_good_version_rolls_out_through_every_step_and_a_bad_one_is_rolled_back(
    stack: Stack, tmp_path: Path
) -> None:
    registry = Registry(open_store(stack.store))
    start = ["rollout", "start", "--store", stack.store, "--min-rows", str(MIN_ROWS)]
    figures: dict[str, Any] = {"replicas": REPLICAS, "reload_interval_s": RELOAD_INTERVAL}

    # (a) v2, retrained on the same data, earns the traffic step by step.
    with traffic(stack.balancer, GOOD_ROWS, "good", tmp_path) as good:
        started = CliRunner().invoke(cli, [*start, "2", "--min-duration", "5s"])
        assert started.exit_code == 0, started.output
        decisions: list[dict[str, Any]] = []
        deadline = time.time() + 240
        while registry.aliases().get("champion") != "2" and time.time() < deadline:
            code, output = step(stack)
            assert code == 0, output
            judged = json.loads(output)
            if judged.get("decision", {}).get("action") not in (None, "hold"):
                decisions.append(judged)
            time.sleep(2)
        assert [d["decision"]["action"] for d in decisions] == ["advance", "advance", "complete"]
        for url in stack.replicas:
            wait_for(lambda u=url: canary_on(u) is None, timeout=RELOAD_INTERVAL + 5)
    assert good["failed"] == 0 and good["errors"] == {}, good

    # (b) a version flagging ten times as much is rolled back at the first step.
    loud = flagging_ten_times(registry, "2")
    with traffic(stack.balancer, BAD_ROWS, "bad", tmp_path) as bad:
        bad_started = time.time()
        started = CliRunner().invoke(cli, [*start, loud, "--min-duration", "1h"])
        assert started.exit_code == 0, started.output
        wait_for(lambda: all(canary_on(u) == loud for u in stack.replicas), timeout=10)
        outcome: dict[str, Any] = {}
        deadline = time.time() + 240
        while not outcome and time.time() < deadline:
            called = time.time()
            code, output = step(stack)
            judged = json.loads(output)
            assert judged["decision"]["action"] in ("hold", "abort"), judged
            if code != 0:
                outcome = {**judged, "called": called}
            time.sleep(1)
        assert outcome, "the bad version was never judged"
        assert outcome["rollout"]["state"] == "aborted" and outcome["rollout"]["step"] == 0
        assert "flag_rate_ratio" in outcome["decision"]["reason"]
        # From the canary alias's removal (its event is written right after the move).
        (removed,) = [
            e for e in registry.events() if e["action"] == "unset" and e["version"] == loud
        ]
        outcome["removed"] = datetime.fromisoformat(removed["timestamp"]).timestamp()
        back = dropped(stack.replicas, outcome["removed"])
    assert bad["failed"] == 0 and bad["errors"] == {}, bad
    assert registry.alias(CANARY).version is None and registry.aliases()["champion"] == "2"

    answered = good["scored"] + bad["scored"]
    wait_for(lambda: log_rows(stack.database_url) >= answered, timeout=60, what="log written")
    after = "created_at > to_timestamp(%s) AT TIME ZONE 'UTC'"
    cutoff = outcome["removed"] + RELOAD_INTERVAL + 2
    bad_rows = "variant = 'canary' AND model_version = %s"
    late = log_rows(stack.database_url, f"{bad_rows} AND {after}", loud, cutoff)
    canary_rows = log_rows(stack.database_url, bad_rows, loud)
    until_abort = log_rows(
        stack.database_url, f"{after} AND NOT {after}", bad_started, outcome["called"]
    )
    figures |= {
        "good_steps": [d["rollout"]["judged"][-1]["share"] for d in decisions],
        "bad_canary_rows": canary_rows,
        "bad_judged_canary_rows": outcome["canary"]["rows"],
        "bad_judged_champion_rows": outcome["champion"]["rows"],
        "bad_reason": outcome["decision"]["reason"],
        "rows_until_abort": until_abort,
        "seconds_until_abort": outcome["called"] - bad_started,
        "replicas_back_s": back,
        "late_canary_rows": late,
        "log_rows": log_rows(stack.database_url),
        "answered": answered,
        "server_errors": server_errors(stack),
    }
    if os.environ.get(FIGURES_ENV):
        Path(os.environ[FIGURES_ENV]).write_text(json.dumps(figures))
    assert max(back) <= RELOAD_INTERVAL + 2, figures
    assert late == 0, figures
    assert figures["log_rows"] == answered, figures
    assert figures["server_errors"] == 0, figures
