"""`fraud models` through click's CliRunner, against both store kinds."""

import json
import socket
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fraud_detection.cli import cli
from fraud_detection.data import make_synthetic
from fraud_detection.registry import Registry
from fraud_detection.store import open_store

NAME = "fraud-detector"


@pytest.fixture
def registry(store_uri: str) -> Registry:
    """Two versions: 1 is champion, 2 is challenger with better test metrics."""
    registry = Registry(open_store(store_uri), NAME)
    for tag, pr_auc in (("a", 0.80), ("b", 0.85)):
        registry.register(
            {"model.onnx": f"onnx-{tag}".encode()},
            {
                "threshold": 0.4,
                "metrics": {
                    "test": {"pr_auc": pr_auc, "precision": 0.9, "recall": 0.7},
                    "test_ci": {"pr_auc": [pr_auc - 0.08, pr_auc + 0.07]},
                    "validation": {"pr_auc": pr_auc - 0.05},
                },
                "data": {"rows": 1000, "synthetic": True},
                "params": {"n_estimators": 100},
            },
        )
    registry.promote("1", reason="first")
    registry.stage("2", reason="retrained")
    return registry


def run(registry: Registry, *args: str) -> Result:
    """Invoke `fraud models ARGS --store <registry's store>` on a wide terminal."""
    runner = CliRunner(env={"COLUMNS": "160"})
    return runner.invoke(cli, ["models", *args, "--store", registry.store.uri])


def test_list_shows_versions_with_aliases_and_metrics(registry: Registry) -> None:
    result = run(registry, "list")
    assert result.exit_code == 0, result.output
    assert "champion" in result.stdout and "challenger" in result.stdout
    assert "0.8500" in result.stdout


def test_list_json_is_every_manifest_with_its_aliases(registry: Registry) -> None:
    result = run(registry, "list", "--json")
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert [{k: v for k, v in m.items() if k != "test_slice"} for m in listed] == (
        registry.list_versions()
    )


def test_list_says_which_slice_each_test_figure_comes_from(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    make_synthetic(rows=20_000, seed=5).to_csv(data, index=False)
    store = str(tmp_path / "store")
    runner = CliRunner(env={"COLUMNS": "200"})
    for command in (["train", "--trees", "8"], ["retrain", "--holdout-frauds", "0"]):
        done = runner.invoke(cli, [*command, "--data", str(data), "--store", store])
        assert done.exit_code == 0, done.output
    registry = Registry(open_store(store), NAME)
    listed = json.loads(run(registry, "list", "--json").stdout)
    assert [m["test_slice"] for m in listed] == [
        {"name": "train test", "rows": 4_000, "share": 0.2},
        {"name": "retrain holdout", "rows": 2_000, "share": 0.1},
    ]
    assert [m["metrics"]["test"]["rows"] for m in listed] == [4_000, 2_000]
    table = run(registry, "list").stdout
    assert "train test, last 20%: 4,000 rows" in table
    assert "retrain holdout, last 10%: 2,000 rows" in table
    assert "different slices do not compare" in table


def test_show_champion_json_prints_exactly_the_manifest(registry: Registry) -> None:
    result = run(registry, "show", "champion", "--json")
    assert result.exit_code == 0
    assert result.stdout == json.dumps(registry.manifest("1"), indent=2) + "\n"


def test_show_prints_a_readable_summary(registry: Registry) -> None:
    result = run(registry, "show", "2")
    assert result.exit_code == 0
    assert "challenger" in result.stdout and "model.onnx" in result.stdout
    assert "0.8500 [0.7700, 0.9200]" in result.stdout  # the interval beside the figure


def test_unknown_version_is_one_error_line_and_exit_2(registry: Registry) -> None:
    result = run(registry, "show", "9")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: version 9 of fraud-detector not found")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_promote_moves_champion_and_says_so(registry: Registry) -> None:
    result = run(registry, "promote", "2", "--reason", "better PR-AUC")
    assert result.exit_code == 0, result.output
    assert "champion: 1 -> 2" in result.stdout
    assert registry.aliases() == {"champion": "2"}
    assert registry.events()[-1]["reason"] == "better PR-AUC"


def test_promote_json_reports_the_change(registry: Registry) -> None:
    result = run(registry, "promote", "champion", "--json")
    assert json.loads(result.stdout) == {
        "alias": "champion",
        "version": "1",
        "previous_version": "1",
        "changed": False,
    }


def test_promote_of_a_corrupted_version_fails_with_exit_1(registry: Registry) -> None:
    registry.store.put_bytes("models/fraud-detector/versions/2/model.onnx", b"tampered")
    result = run(registry, "promote", "2")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "does not match" in result.stderr
    assert registry.aliases()["champion"] == "1"


def test_rollback_restores_the_previous_champion(registry: Registry) -> None:
    run(registry, "promote", "2")
    result = run(registry, "rollback", "--reason", "alerts firing", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["version"] == "1"
    assert registry.aliases()["champion"] == "1"
    assert registry.events()[-1]["action"] == "rolled_back"


def test_rollback_with_no_previous_champion_exits_2(registry: Registry) -> None:
    result = run(registry, "rollback")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "no previous champion" in result.stderr


def test_diff_shows_metrics_side_by_side_with_deltas(registry: Registry) -> None:
    result = run(registry, "diff", "1", "2", "--json")
    assert result.exit_code == 0
    rows = {row["field"]: row for row in json.loads(result.stdout)["rows"]}
    assert rows["metrics.test.pr_auc"]["delta"] == pytest.approx(0.05)
    assert rows["metrics.validation.pr_auc"]["changed"] is True
    assert rows["params.n_estimators"]["changed"] is False
    assert rows["files.model.onnx"]["changed"] is True
    human = run(registry, "diff", "champion", "challenger")
    assert "metrics.test.pr_auc" in human.stdout and "+0.0500" in human.stdout


def test_store_and_name_default_to_the_environment(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAUD_MODEL_STORE", registry.store.uri)
    monkeypatch.setenv("FRAUD_MODEL_NAME", NAME)
    result = CliRunner().invoke(cli, ["models", "show", "challenger", "--json"])
    assert json.loads(result.stdout)["version"] == "2"


def test_unreachable_store_is_one_error_line_and_exit_1(
    s3_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    result = CliRunner().invoke(cli, ["models", "list", "--store", "s3://bucket/prefix"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: s3://bucket/prefix/models/fraud-detector/")
    assert "Could not connect" in result.stderr and "Traceback" not in result.stderr


def test_the_mlflow_install_hint_keeps_its_brackets(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # no MLflow client installed
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file://{tmp_path}/mlruns")
    result = run(registry, "promote", "2")
    assert result.exit_code == 0, result.output
    assert "pip install 'fraud-detection[mlflow]'" in result.stderr


def test_store_text_in_a_table_is_shown_as_written(tmp_path: Path) -> None:
    registry = Registry(open_store(str(tmp_path / "store")), NAME)
    source = "s3://bucket/day[1]/[bold]x[/bold].csv"
    manifest = {"threshold": 0.4, "algorithm": "[red]rf", "data": {"source": source}}
    registry.register({"model.onnx": b"x"}, manifest)
    result = run(registry, "show", "1")
    assert result.exit_code == 0, result.output
    assert source in result.stdout and "[red]rf" in result.stdout
