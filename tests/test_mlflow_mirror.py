"""The store mirrored into a real MLflow server: runs, registry versions and aliases, an outage
that warns instead of failing, and a sync that catches up."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow_helpers import running_mlflow

from fraud_detection.cli import cli
from fraud_detection.mlflow_mirror import STORE_VERSION_TAG, sync
from fraud_detection.registry import Registry
from fraud_detection.store import open_store
from prometheus_helpers import free_port
from serving_helpers import train_into

NAME = "fraud-detector"


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_mlflow(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


def _by_store_version(client: MlflowClient) -> dict[str, str]:
    return {
        mv.tags[STORE_VERSION_TAG]: mv.version
        for mv in client.search_model_versions(f"name = '{NAME}'")
    }


def test_every_version_becomes_a_run_and_a_registered_version_with_the_aliases(
    mlflow_url: str, store: Path
) -> None:
    registry = Registry(open_store(str(store)), NAME)
    report = sync(registry, mlflow_url)
    assert report.error is None, report.summary()
    assert report.mirrored == ["1", "2"]
    client = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
    versions = _by_store_version(client)
    assert set(versions) == {"1", "2"}
    champion = client.get_model_version_by_alias(NAME, "champion")
    assert champion.tags[STORE_VERSION_TAG] == "1"
    assert client.get_model_version_by_alias(NAME, "challenger").tags[STORE_VERSION_TAG] == "2"

    run = client.get_run(champion.run_id)
    manifest = registry.manifest("1")
    assert run.data.tags["fraud.data_sha256"] == manifest["data"]["sha256"]
    assert run.data.tags["fraud.decision"] == "promoted"
    assert run.data.tags["fraud.algorithm"] == manifest["algorithm"]
    assert run.data.params["model.n_estimators"] == str(manifest["params"]["n_estimators"])
    assert run.data.metrics["threshold"] == pytest.approx(manifest["threshold"])
    assert run.data.metrics["test.pr_auc"] == pytest.approx(manifest["metrics"]["test"]["pr_auc"])
    assert run.data.metrics["test.rows"] == manifest["metrics"]["test"]["rows"]
    assert "validation.f1" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    artifacts |= {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert {"model/model.onnx", "model/manifest.json", "report/report.md"} <= artifacts
    assert "model/model.joblib" not in artifacts and "report/model.joblib" not in artifacts
    onnx = Path(client.download_artifacts(run.info.run_id, "model/model.onnx", str(store.parent)))
    assert onnx.read_bytes() == registry.read_file("1", "model.onnx")

    # Promote and roll back in the store: the aliases follow; nothing is mirrored twice.
    registry.promote("2", reason="better")
    assert sync(registry, mlflow_url).mirrored == []
    assert client.get_model_version_by_alias(NAME, "champion").tags[STORE_VERSION_TAG] == "2"
    registry.rollback(reason="worse in production")
    sync(registry, mlflow_url)
    assert client.get_model_version_by_alias(NAME, "champion").tags[STORE_VERSION_TAG] == "1"
    assert len(_by_store_version(client)) == 2


def test_an_mlflow_outage_warns_and_a_later_sync_catches_up(
    mlflow_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A model of its own name, so the server's other registered model does not interfere.
    monkeypatch.setenv("FRAUD_MODEL_NAME", "outage-model")
    train_into(tmp_path / "store", promote=True)
    registry = Registry(open_store(str(tmp_path / "store")), "outage-model")
    down = f"http://127.0.0.1:{free_port()}"
    report = sync(registry, down)
    assert report.error is not None
    assert report.not_mirrored == ["version 1", "aliases"]
    assert "sync-mlflow" in report.summary() and "version 1" in report.summary()
    caught_up = sync(registry, mlflow_url)
    assert caught_up.error is None and caught_up.mirrored == ["1"]
    client = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
    champion = client.get_model_version_by_alias("outage-model", "champion")
    assert champion.tags[STORE_VERSION_TAG] == "1"


def test_train_promote_and_rollback_mirror_themselves_and_an_outage_never_fails_training(
    mlflow_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAUD_MODEL_NAME", "cli-model")
    store = tmp_path / "store"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")  # down
    train_into(store, promote=True)  # exits 0 although MLflow is down
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_url)
    train_into(store)  # mirrors version 2 and catches up on version 1
    client = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
    champion = client.get_model_version_by_alias("cli-model", "champion")
    assert champion.tags[STORE_VERSION_TAG] == "1"
    runner = CliRunner()
    promoted = runner.invoke(cli, ["models", "promote", "2", "--store", str(store)])
    assert promoted.exit_code == 0, promoted.output
    assert client.get_model_version_by_alias("cli-model", "champion").tags[STORE_VERSION_TAG] == "2"
    rolled = runner.invoke(cli, ["models", "rollback", "--store", str(store)])
    assert rolled.exit_code == 0, rolled.output
    assert client.get_model_version_by_alias("cli-model", "champion").tags[STORE_VERSION_TAG] == "1"
    synced = runner.invoke(cli, ["models", "sync-mlflow", "--store", str(store)])
    assert synced.exit_code == 0 and "none new" in synced.output


def test_sync_mlflow_fails_with_exit_1_while_mlflow_is_down(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    down = f"http://127.0.0.1:{free_port()}"
    args = ["models", "sync-mlflow", "--store", str(store), "--tracking-uri", down]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "not mirrored: version 1, version 2, aliases" in result.output
    unset = CliRunner().invoke(cli, ["models", "sync-mlflow", "--store", str(store)])
    assert unset.exit_code == 2 and "MLFLOW_TRACKING_URI" in unset.output
