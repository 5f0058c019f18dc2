"""A rollout against a running service in-process: the canary alias routes its share, each
step is judged on the logged rows with a clock the test moves, and the CLI's exit codes."""

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import Engine, text

from conftest import MakeApp
from fraud_detection.cli import cli
from fraud_detection.data import make_synthetic
from fraud_detection.errors import RolloutAborted, UsageError
from fraud_detection.prediction_log import count_rows, ensure_schema, open_engine
from fraud_detection.registry import CANARY, Registry
from fraud_detection.rollout import Limits
from fraud_detection.rollout_run import (
    assess,
    begin,
    load,
    open_rollout,
    report,
    require_not_aborted,
)
from fraud_detection.rollout_run import step as judge_step
from fraud_detection.schema import FEATURES
from fraud_detection.serving import dataplane
from fraud_detection.store import open_store
from prometheus_helpers import running_pushgateway
from waiting import wait_for

LIMITS = Limits(min_duration_s=3600, min_rows=60)
CANARY_IDS = (
    "SELECT transaction_id FROM predictions WHERE variant = 'canary' AND model_version = :v"
)
ROWS = make_synthetic(rows=40_000, seed=11)
_ids = itertools.count()


def canary_of(registry: Registry) -> tuple[str, float | None] | None:
    pointer = registry.alias(CANARY)
    return (pointer.version, pointer.share) if pointer.version else None


def register_with_threshold(registry: Registry, source: str, threshold: float) -> str:
    """A copy of version `source` that decides at another threshold (its own new version)."""
    manifest = registry.manifest(source)
    files = {name: registry.read_file(source, name) for name in manifest["files"]}
    kept = {k: v for k, v in manifest.items() if k not in ("version", "created_at", "files")}
    made = registry.register(files, {**kept, "threshold": threshold}, reason="test threshold")
    return str(made["version"])


class Clock:
    """The test's time: the rollout judges by it and the service logs rows at it."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, tzinfo=UTC)

    def pass_(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(dataplane, "utc_now", lambda: clock.now.replace(tzinfo=None))
    return clock


@pytest.fixture
def service(make_app: MakeApp, store: Path, tmp_path: Path) -> Iterator[tuple[Flask, Engine]]:
    url = f"sqlite:///{tmp_path / 'rollout.db'}"
    engine = open_engine(url)
    ensure_schema(engine)
    yield make_app(store, database_url=url), engine


def send(app: Flask, engine: Engine, rows: int) -> None:
    """`rows` transactions through /predict (batches of 500), then wait for the log."""
    before = count_rows(engine)
    client = app.test_client()
    sample = ROWS.sample(rows, random_state=next(_ids))
    instances = [
        {**{f: float(r[f]) for f in FEATURES}, "transaction_id": f"t{next(_ids)}"}
        for _, r in sample.iterrows()
    ]
    for start in range(0, rows, 500):
        answer = client.post("/predict", json={"instances": instances[start : start + 500]})
        assert answer.status_code == 200
    wait_for(lambda: count_rows(engine) >= before + rows, what="rows logged")


def reload(app: Flask) -> dict[str, Any]:
    client = app.test_client()
    assert client.post("/admin/reload").status_code == 200
    models: dict[str, Any] = client.get("/models").get_json()
    return models


def test_a_good_canary_advances_through_every_step_and_becomes_champion(
    service: tuple[Flask, Engine], store: Path, clock: Clock
) -> None:
    app, engine = service
    registry = Registry(open_store(str(store)))
    now = clock.now
    begin(registry, "2", steps=(0.05, 0.25, 0.5, 1.0), limits=LIMITS, now=now, reason="test")
    assert canary_of(registry) == ("2", 0.05)
    assert reload(app)["canary"]["share"] == 0.05
    with pytest.raises(UsageError, match="being rolled out already"):
        begin(registry, "2", steps=(0.5, 1.0), limits=LIMITS, now=now, reason="twice")
    actions = []
    for share in (0.05, 0.25, 0.5):
        clock.pass_(minutes=10)
        send(app, engine, 2000)
        held = judge_step(registry, engine, now=clock.pass_(minutes=20))
        assert held is not None and held.decision.action == "hold"
        assert held.canary.rows >= LIMITS.min_rows
        # The canary's rows are the ids hashed below its share: about that share of rows.
        expected = share * (held.canary.rows + held.champion.rows)
        assert abs(held.canary.rows - expected) < 5 * expected**0.5
        now = clock.pass_(minutes=30, seconds=1)
        result = judge_step(registry, engine, now=now)
        assert result is not None
        actions.append(result.decision.action)
        assert "## Step" in report(result, result.after, now)
        models = reload(app)
        if result.decision.action == "advance":
            assert models["canary"]["share"] == result.after.share
    assert actions == ["advance", "advance", "complete"]
    assert registry.aliases() == {"champion": "2"}
    assert canary_of(registry) is None
    models = reload(app)
    assert models["champion"]["version"] == "2" and models["canary"] is None
    trail = [e["action"] for e in registry.events() if e["action"].startswith("rollout")]
    assert trail == ["rollout_started", "rollout_advanced", "rollout_advanced", "rollout_completed"]
    registry.rollback(reason="the previous champion is kept for a rollback")
    assert registry.aliases()["champion"] == "1"


def test_a_canary_flagging_far_more_aborts_at_the_first_step(
    service: tuple[Flask, Engine], store: Path, clock: Clock
) -> None:
    app, engine = service
    registry = Registry(open_store(str(store)))
    loud = register_with_threshold(registry, "1", 0.0)
    now = clock.now
    begin(registry, loud, steps=(0.05, 1.0), limits=LIMITS, now=now, reason="test")
    reload(app)
    clock.pass_(minutes=1)
    send(app, engine, 2000)
    # Minutes into the step: a breach does not wait for the step's minimum duration.
    result = judge_step(registry, engine, now=clock.pass_(minutes=4))
    assert result is not None and result.decision.action == "abort"
    assert "flag_rate_ratio" in result.decision.reason
    assert canary_of(registry) is None and registry.aliases()["champion"] == "1"
    assert reload(app)["canary"] is None
    with pytest.raises(RolloutAborted, match="flag_rate_ratio"):
        require_not_aborted(result)
    (event,) = [e for e in registry.events() if e["action"] == "rollout_aborted"]
    assert event["reason"] == result.decision.reason
    assert {c["name"] for c in event["details"]["checks"]} >= {"flag_rate_ratio", "score_psi"}
    state = load(registry)
    assert state is not None and state.state == "aborted" and open_rollout(registry) is None
    markdown = report(result, state, now)
    assert "aborted" in markdown and "| flag_rate_ratio | breach |" in markdown


def test_the_cli_starts_reports_aborts_and_exits_1_on_a_breach(
    service: tuple[Flask, Engine], store: Path, tmp_path: Path
) -> None:
    app, engine = service
    registry = Registry(open_store(str(store)))
    loud = register_with_threshold(registry, "1", 0.0)
    where = ["--store", str(store)]
    judged = [*where, "--database-url", str(engine.url), "--report", str(tmp_path / "r.md")]
    runner = CliRunner()
    none = runner.invoke(cli, ["rollout", "step", *judged])
    assert none.exit_code == 0 and "No rollout" in none.output
    with running_pushgateway() as gateway:
        idle = runner.invoke(cli, ["rollout", "step", *judged, "--pushgateway", gateway])
        pushed = requests.get(f"{gateway}/metrics", timeout=10).text
    # Before any rollout the series exist (an alert on them can be evaluated), at 0.
    assert idle.exit_code == 0, idle.output
    never = 'job="fraud-rollout",model="fraud-detector",state="none",version=""'
    assert f'fraud_rollout_step{{instance="",{never}}} 0' in pushed
    started = runner.invoke(
        cli, ["rollout", "start", loud, "--steps", "10,50", "--min-rows", "60", *where]
    )
    assert started.exit_code == 0, started.output
    assert "10% of traffic now, then 50% → 100%" in started.output
    reload(app)
    send(app, engine, 1500)
    status = runner.invoke(cli, ["rollout", "status", *judged])
    assert status.exit_code == 0, status.output
    assert "step 1 of 3 at 10%" in status.output and canary_of(registry) == (loud, 0.1)
    with running_pushgateway() as gateway:
        stepped = runner.invoke(cli, ["rollout", "step", *judged, "--pushgateway", gateway])
        pushed = requests.get(f"{gateway}/metrics", timeout=10).text
    assert stepped.exit_code == 1, stepped.output
    assert "aborted" in stepped.output and "flag_rate_ratio" in stepped.output
    # What FraudRolloutAborted watches: the step it stopped at, in state "aborted".
    labels = f'job="fraud-rollout",model="fraud-detector",state="aborted",version="{loud}"'
    assert f'fraud_rollout_step{{instance="",{labels}}} 1' in pushed
    assert f'fraud_rollout_share{{instance="",{labels}}} 0' in pushed
    assert (tmp_path / "r.md").read_text().startswith(f"# Rollout of version {loud}")
    assert canary_of(registry) is None
    with running_pushgateway() as gateway:
        idle = runner.invoke(cli, ["rollout", "step", *judged, "--pushgateway", gateway])
        pushed = requests.get(f"{gateway}/metrics", timeout=10).text
    # The hourly step with nothing open keeps the abort showing until the next rollout.
    assert idle.exit_code == 0 and f'fraud_rollout_step{{instance="",{labels}}} 1' in pushed
    again = runner.invoke(cli, ["rollout", "abort", *where])
    assert again.exit_code == 2 and "no rollout" in again.output


def test_retrain_with_rollout_starts_one_for_a_winner_instead_of_promoting(
    store: Path, tmp_path: Path
) -> None:
    data = tmp_path / "creditcard.csv"
    make_synthetic(rows=20_000, seed=4).to_csv(data, index=False)
    args = ["retrain", "--data", str(data), "--store", str(store), "--lookback-days", "0"]
    result = CliRunner().invoke(cli, [*args, "--force-promotion", "--rollout"])
    assert result.exit_code == 0, result.output
    registry = Registry(open_store(str(store)))
    assert registry.aliases()["champion"] == "1"  # not promoted: it has to earn the traffic
    assert canary_of(registry) == ("3", 0.05)
    rollout = open_rollout(registry)
    assert rollout is not None and (rollout.version, rollout.champion) == ("3", "1")
    assert "Rolling out version 3" in result.output


def test_only_analysts_reviews_count_towards_alert_precision(
    service: tuple[Flask, Engine], store: Path, clock: Clock
) -> None:
    app, engine = service
    registry = Registry(open_store(str(store)))
    loud = register_with_threshold(registry, "1", 0.0)  # every canary row is an alert
    begin(registry, loud, steps=(0.5, 1.0), limits=LIMITS, now=clock.now, reason="test")
    reload(app)
    clock.pass_(minutes=1)
    send(app, engine, 400)
    with engine.connect() as conn:
        alerts = [r[0] for r in conn.execute(text(CANARY_IDS), {"v": loud}).all()][:40]
    labels = [
        {"transaction_id": tid, "label": i % 2, "source": "review" if i < 20 else "chargeback"}
        for i, tid in enumerate(alerts)
    ]
    assert app.test_client().post("/feedback", json={"labels": labels}).status_code == 200
    result = assess(registry, engine, now=clock.pass_(minutes=1))
    assert result is not None
    assert (result.canary.reviewed, result.canary.confirmed) == (20, 10)
