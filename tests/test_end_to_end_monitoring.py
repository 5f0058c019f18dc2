"""The whole monitoring loop with real parts: the service under gunicorn, `fraud simulate`
replaying real "new data", `fraud monitor` pushing to a real Pushgateway, and a real
Prometheus running the repo's prometheus.yml and alerts.yml. Every Grafana panel query must
return data and every metric an alert reads must exist."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import requests

from fraud_detection.prediction_log import open_engine, read_window
from fraud_detection.registry import Registry
from fraud_detection.store import open_store
from ops_files import alert_rules, dashboard_panels, metric_names, recorded_names
from prometheus_helpers import (
    api,
    host_port,
    localized_config,
    query,
    running_prometheus,
    running_pushgateway,
)
from serving_helpers import serve, transaction
from waiting import wait_for

pytestmark = pytest.mark.long  # an end-to-end run: see pyproject.toml

REPLAYED = 6_000
# Grafana fills $__rate_interval in; a window this long holds every scrape of the test.
RATE_INTERVAL = "5m"


def fraud(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `fraud` command line as operators do."""
    done = subprocess.run(
        [sys.executable, "-m", "fraud_detection", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, f"fraud {args[0]}: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def stack(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A champion trained on the real data, served, replayed through, monitored and scraped."""
    tmp = tmp_path_factory.mktemp("e2e")
    store = tmp / "store"
    database = f"sqlite:///{tmp / 'predictions.db'}"
    fraud("train", "--data", str(real_data), "--store", str(store), "--trees", "20")
    with (
        serve(store, tmp, DATABASE_URL=database) as service,
        running_pushgateway() as gateway,
    ):
        config = localized_config(
            tmp / "prometheus",
            {"fraud-detection": host_port(service), "pushgateway": host_port(gateway)},
        )
        with running_prometheus(config) as prometheus:
            yield {
                "store": str(store),
                "database": database,
                "service": service,
                "gateway": gateway,
                "prometheus": prometheus,
            }


@pytest.fixture(scope="module")
def replayed(stack: dict[str, str], real_data: Path) -> dict[str, object]:
    """`fraud simulate` then `fraud monitor`, as the README runs them; both summaries."""
    # A few rejected requests, as real clients send: the error panels need their series.
    for body in (transaction(V1="abc"), transaction(Amount=-1.0)):
        assert requests.post(f"{stack['service']}/predict", json=body, timeout=5).status_code == 400
    simulated = json.loads(
        fraud(
            "simulate", "--url", stack["service"], "--data", str(real_data),
            "--limit", str(REPLAYED), "--rate", "0", "--batch-size", "20",
            "--label-delay", "1", "--json",
        ).stdout
    )  # fmt: skip
    review_the_alerts(stack)
    # Every label of this replay is in within seconds: no horizon to wait for, so the rates
    # are measured on the window itself (with the default 60 days they would be unknown).
    settled_at_once = {**os.environ, "FRAUD_LABEL_MATURITY_DAYS": "0"}
    monitored = json.loads(
        fraud(
            "monitor", "--store", stack["store"], "--database-url", stack["database"],
            "--pushgateway", stack["gateway"], "--json", env=settled_at_once,
        ).stdout
    )  # fmt: skip
    # The hourly rollout step of fraud schedule, with no rollout open: its gauges exist.
    fraud(
        "rollout", "step", "--store", stack["store"], "--database-url", stack["database"],
        "--pushgateway", stack["gateway"],
    )  # fmt: skip
    prometheus = stack["prometheus"]
    # Prometheus has caught up once it has scraped every replayed transaction and the pushes.
    wait_for(
        lambda: (
            bool(query(prometheus, "model_drift_detected"))
            and bool(query(prometheus, "fraud_rollout_step"))
            and _value(query(prometheus, "sum(fraud_predictions_total)")) == REPLAYED
        ),
        timeout=60,
    )
    return {"simulate": simulated, "monitor": monitored}


def review_the_alerts(stack: dict[str, str]) -> None:
    """An analyst's review of the replayed alerts, as the review page sends it: the alert
    precision and review coverage panels need their series."""
    window = read_window(open_engine(stack["database"]), datetime(2000, 1, 1))
    alerts = window[window.is_fraud & window.label.notna()]
    labels = [
        {"transaction_id": tid, "label": int(label), "source": "review", "reviewer": "e2e"}
        for tid, label in zip(alerts.transaction_id, alerts.label, strict=True)
    ]
    assert labels, "the replay raised alerts"
    response = requests.post(f"{stack['service']}/feedback", json={"labels": labels}, timeout=10)
    assert response.status_code == 200


def _value(result: list[dict[str, object]]) -> float:
    return float(result[0]["value"][1]) if result else float("nan")  # type: ignore[index]


def test_replay_scored_and_labelled_every_transaction(replayed: dict[str, dict]) -> None:
    simulated, monitored = replayed["simulate"], replayed["monitor"]
    assert simulated["scored"] == REPLAYED and simulated["failed"] == 0
    assert simulated["labels_sent"] == REPLAYED
    assert monitored["metrics"]["rows"] == REPLAYED
    assert monitored["metrics"]["labelled"] == REPLAYED
    assert monitored["drift_detected"] is False, monitored["reasons"]


def test_every_grafana_panel_query_returns_data(
    stack: dict[str, str], replayed: dict[str, object]
) -> None:
    empty = []
    for panel in dashboard_panels():
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", RATE_INTERVAL)
            if not query(stack["prometheus"], expr):
                empty.append(f"{panel['title']}: {expr}")
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_every_metric_an_alert_reads_exists(
    stack: dict[str, str], replayed: dict[str, object]
) -> None:
    names = set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))
    missing = sorted(
        name
        for name in names - recorded_names()
        if not query(stack["prometheus"], f'count({{__name__="{name}"}})')
    )
    assert not missing, f"alerts read metrics that do not exist: {missing}"


def test_rules_evaluate_without_errors_and_nothing_fires_on_healthy_traffic(
    stack: dict[str, str], replayed: dict[str, object]
) -> None:
    groups = api(stack["prometheus"], "rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert rules and all(rule["health"] == "ok" for rule in rules), [
        (rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"
    ]
    firing = {a["labels"]["alertname"] for a in api(stack["prometheus"], "alerts")["alerts"]}
    assert not firing & {"FraudModelDriftDetected", "FraudServiceDown", "FraudServerErrorRateHigh"}


def test_a_shifted_replay_flags_exactly_the_shifted_features_and_triggers_a_retrain(
    stack: dict[str, str], replayed: dict[str, object], real_data: Path, tmp_path: Path
) -> None:
    # Runs last: its push turns the drift gauge on. The window holds only this replay.
    started = time.time()
    fraud(
        "simulate", "--url", stack["service"], "--data", str(real_data),
        "--limit", str(REPLAYED), "--rate", "0", "--batch-size", "20", "--label-delay", "0",
        "--shift", "Amount*3", "--shift", "V14+2", "--json",
    )  # fmt: skip
    lookback = (time.time() - started + 1) / 86_400
    monitored = json.loads(
        fraud(
            "monitor", "--store", stack["store"], "--database-url", stack["database"],
            "--lookback-days", f"{lookback:.8f}", "--json",
        ).stdout
    )  # fmt: skip
    assert monitored["metrics"]["rows"] == REPLAYED
    flagged = {name for name, psi in monitored["feature_psi"].items() if psi > 0.2}
    assert flagged == {"Amount", "V14"}, monitored["feature_psi"]
    assert monitored["drift_detected"] is True

    # The same run with --on-drift retrain trains a challenger on the real data (its labelled
    # replay rows included) and decides; a second run inside the cooldown only records a skip.
    def since_the_replay() -> list[str]:
        return ["--lookback-days", f"{(time.time() - started + 1) / 86_400:.8f}"]

    args = ["--store", stack["store"], "--database-url", stack["database"], "--on-drift", "retrain"]
    env = {**os.environ, "FRAUD_DATA": str(real_data), "FRAUD_REPORTS": str(tmp_path)}
    triggered = fraud("monitor", *args, *since_the_replay(), env=env)
    assert "retrain triggered" in triggered.stderr, triggered.stdout[-2000:]
    registry = Registry(open_store(stack["store"]), "fraud-detector")
    assert [v["version"] for v in registry.list_versions()] == ["1", "2"]
    actions = [event["action"] for event in registry.events()]
    assert actions[actions.index("retrain_triggered") + 1] == "registered"
    assert "Decision" in (tmp_path / "retrain-on-drift.md").read_text()
    fraud("monitor", *args, *since_the_replay(), env=env)
    assert registry.events()[-1]["action"] == "retrain_skipped"
    assert len(registry.list_versions()) == 2
