"""`fraud monitor --on-drift`: a flagged drift retrains here or dispatches the GitHub workflow,
at most once per cooldown, and the event trail says why each time."""

import json
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from fraud_detection.cli import cli
from fraud_detection.data import make_synthetic
from fraud_detection.prediction_log import open_engine
from fraud_detection.registry import Registry
from fraud_detection.store import open_store

NAME = "fraud-detector"


@pytest.fixture
def drifted(logged: tuple[Path, str], tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A private copy of the monitored store and log, with V14 shifted in every logged row."""
    store, url = logged
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    database = tmp_path / "log.db"
    # The backup API, not a file copy: the log is in WAL mode, its rows may be in the -wal file.
    with (
        sqlite3.connect(url.removeprefix("sqlite:///")) as source,
        sqlite3.connect(database) as target,
    ):
        source.backup(target)
    drifted_url = f"sqlite:///{database}"
    with open_engine(drifted_url).begin() as conn:
        conn.exec_driver_sql('UPDATE predictions SET "V14" = "V14" + 2')
    yield copy, drifted_url


def _monitor(store: Path, url: str, *args: str, env: dict[str, str] | None = None) -> Any:
    argv = ["monitor", "--store", str(store), "--database-url", url, "--json", *args]
    return CliRunner().invoke(cli, argv, env=env)


def _actions(store: Path) -> list[str]:
    return [e["action"] for e in Registry(open_store(str(store)), NAME).events()]


class GitHub(BaseHTTPRequestHandler):
    """GitHub's workflow-dispatch endpoint, recording what it was sent; answers 204."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        GitHub.received.append(
            {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
        )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def github() -> Iterator[str]:
    GitHub.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), GitHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_drift_dispatches_the_retrain_workflow_as_github_documents(
    drifted: tuple[Path, str], github: str
) -> None:
    store, url = drifted
    env = {"GITHUB_TOKEN": "ghs_test", "GITHUB_REPOSITORY": "acme/fraud", "GITHUB_API_URL": github}
    result = _monitor(store, url, "--on-drift", "dispatch", env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["drift_detected"] is True
    [request] = GitHub.received
    assert request["path"] == "/repos/acme/fraud/actions/workflows/retrain.yml/dispatches"
    assert request["headers"]["Authorization"] == "Bearer ghs_test"
    assert request["headers"]["Accept"] == "application/vnd.github+json"
    assert request["headers"]["X-GitHub-Api-Version"] == "2022-11-28"
    assert request["body"]["ref"] == "main"
    assert request["body"]["inputs"]["reason"].startswith("drift: PSI of V14")
    assert _actions(store)[-1] == "retrain_triggered"

    # The next day's run sees the same drift: within the cooldown, nothing is dispatched.
    again = _monitor(store, url, "--on-drift", "dispatch", env=env)
    assert again.exit_code == 0 and len(GitHub.received) == 1
    event = Registry(open_store(str(store)), NAME).events()[-1]
    assert event["action"] == "retrain_skipped" and event["reason"].startswith("cooldown")
    # With the cooldown over, it dispatches again.
    third = _monitor(store, url, "--on-drift", "dispatch", "--cooldown-days", "0", env=env)
    assert third.exit_code == 0 and len(GitHub.received) == 2


def test_a_dispatch_github_refuses_or_without_credentials_fails_the_run(
    drifted: tuple[Path, str],
) -> None:
    store, url = drifted
    result = _monitor(store, url, "--on-drift", "dispatch", env={"GITHUB_TOKEN": ""})
    assert result.exit_code == 1
    assert "GITHUB_TOKEN and GITHUB_REPOSITORY" in result.output


def test_no_drift_triggers_nothing(logged: tuple[Path, str], tmp_path: Path) -> None:
    store, url = logged
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    result = _monitor(copy, url, "--on-drift", "retrain")
    assert result.exit_code == 0 and json.loads(result.stdout)["drift_detected"] is False
    assert "retrain_triggered" not in _actions(copy)


def test_drift_retrains_here_on_the_same_store(drifted: tuple[Path, str], tmp_path: Path) -> None:
    store, url = drifted
    data = tmp_path / "data.csv.gz"
    make_synthetic(rows=20_000, seed=9).to_csv(data, index=False)
    env = {"FRAUD_DATA": str(data), "FRAUD_REPORTS": str(tmp_path / "reports")}
    result = _monitor(store, url, "--on-drift", "retrain", env=env)
    assert result.exit_code == 0, result.output
    assert "retrain triggered" in result.stderr
    registry = Registry(open_store(str(store)), NAME)
    assert [v["version"] for v in registry.list_versions()] == ["1", "2"]
    assert (tmp_path / "reports" / "retrain-on-drift.md").exists()
    actions = _actions(store)
    assert actions.index("retrain_triggered") < actions.index("registered", 1)
