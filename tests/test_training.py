"""`fraud train` end to end: real data, both store kinds, bad data, concurrent runs."""

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from fraud_detection.cli import cli
from fraud_detection.data import make_synthetic
from fraud_detection.registry import Registry
from fraud_detection.store import open_store

MANIFEST_KEYS = {"version", "created_at", "threshold", "features", "metrics", "data", "files"}
METRIC_KEYS = {"pr_auc", "roc_auc", "precision", "recall", "f1", "fpr", "fnr"}
FAST = ["--trees", "8"]


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def show_champion(store: str) -> dict[str, Any]:
    result = run_cli("models", "show", "champion", "--json", "--store", store)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic dataset on disk (the real one is never sliced into test files)."""
    path = tmp_path_factory.mktemp("data") / "small.csv.gz"
    make_synthetic(rows=20_000, seed=3).to_csv(path, index=False)
    return path


def test_training_on_real_data_registers_a_champion_with_the_spec_manifest(
    real_data: Path, tmp_path: Path
) -> None:
    store = str(tmp_path / "store")
    result = run_cli("train", "--data", str(real_data), "--store", store, *FAST)
    assert result.exit_code == 0, result.output
    manifest = show_champion(store)
    assert MANIFEST_KEYS <= manifest.keys()
    assert METRIC_KEYS | {"test_fraud_rate"} <= manifest["metrics"]["test"].keys()
    assert METRIC_KEYS <= manifest["metrics"]["validation"].keys()
    assert manifest["data"]["rows"] == 284_807
    assert manifest["data"]["frauds"] == 492
    assert manifest["data"]["test_rows"] == 56_962
    assert manifest["metrics"]["test"]["frauds"] == 75
    assert manifest["data"]["synthetic"] is False
    assert manifest["features"][0] == "Time" and manifest["features"][-1] == "Amount"
    assert {"model.onnx", "model.joblib", "reference.json", "report.md"} <= manifest["files"].keys()
    assert manifest["onnx_parity_max_abs_diff"] <= 1e-5
    assert 0.5 < manifest["metrics"]["test"]["pr_auc"] <= 1.0
    assert "Training summary" in result.stdout
    assert manifest["family"] == "rf"
    low, high = manifest["metrics"]["test_ci"]["pr_auc"]
    assert low < manifest["metrics"]["test"]["pr_auc"] < high
    assert set(manifest["metrics"]["validation_ci"]) >= METRIC_KEYS | {"recall_at_budget"}
    assert manifest["bootstrap"]["stratified"] == "by class"


@pytest.mark.parametrize("algorithm", ["xgboost", "lightgbm"])
def test_boosted_families_train_export_and_record_their_family(
    algorithm: str, small_csv: Path, tmp_path: Path
) -> None:
    store = str(tmp_path / "store")
    args = ("--data", str(small_csv), "--store", store, "--algorithm", algorithm, "--trees", "20")
    result = run_cli("train", *args)
    assert result.exit_code == 0, result.output
    manifest = show_champion(store)
    assert manifest["family"] == algorithm
    assert manifest["params"]["n_estimators"] == 20
    assert manifest["onnx_parity_max_abs_diff"] <= 1e-5
    test, ci = manifest["metrics"]["test"], manifest["metrics"]["test_ci"]
    assert f"{test['pr_auc']:.4f} [{ci['pr_auc'][0]:.4f}, {ci['pr_auc'][1]:.4f}]" in result.stdout
    assert "alerts / 10k" in result.stdout


def test_same_store_layout_on_local_folder_and_s3(small_csv: Path, store_uri: str) -> None:
    result = run_cli("train", "--data", str(small_csv), "--store", store_uri, *FAST)
    assert result.exit_code == 0, result.output
    keys = open_store(store_uri).list_keys("models/")
    prefix = "models/fraud-detector/"
    assert f"{prefix}aliases/champion.json" in keys
    version_files = {k.removeprefix(f"{prefix}versions/1/") for k in keys if "/versions/1/" in k}
    assert {
        "manifest.json",
        "model.onnx",
        "model.joblib",
        "reference.json",
        "report.md",
        "pr_curve.png",
        "confusion_matrix.png",
    } <= version_files
    assert any(k.startswith(f"{prefix}events/") and k.endswith("-registered.json") for k in keys)
    assert show_champion(store_uri)["version"] == "1"


def test_a_second_training_is_staged_not_promoted(small_csv: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    for _ in range(2):
        assert run_cli("train", "--data", str(small_csv), "--store", store, *FAST).exit_code == 0
    registry = Registry(open_store(store), "fraud-detector")
    assert registry.aliases() == {"champion": "1", "challenger": "2"}


def test_synthetic_training_says_so_in_every_output(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    result = run_cli("train", "--synthetic", "--synthetic-rows", "20000", "--store", store, *FAST)
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.stdout
    assert "SYNTHETIC" in result.stderr
    manifest = show_champion(store)
    assert manifest["data"]["synthetic"] is True
    report = Registry(open_store(store), "fraud-detector").read_file("champion", "report.md")
    assert b"SYNTHETIC DATA" in report


@pytest.mark.parametrize("command", ["train", "retrain"])
@pytest.mark.parametrize("store_variable", [None, ""])
def test_in_github_actions_a_missing_store_exits_2_naming_the_variable(
    command: str,
    store_variable: str | None,
    small_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    if store_variable is None:
        monkeypatch.delenv("FRAUD_MODEL_STORE", raising=False)
    else:
        monkeypatch.setenv("FRAUD_MODEL_STORE", store_variable)
    result = run_cli(command, "--data", str(small_csv), *(FAST if command == "train" else []))
    assert result.exit_code == 2, result.output
    assert "repository variable FRAUD_MODEL_STORE" in result.stderr
    assert not (tmp_path / ".fraud" / "store").exists()


def test_in_github_actions_a_named_store_trains(
    small_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("FRAUD_MODEL_STORE", str(tmp_path / "store"))
    assert run_cli("train", "--data", str(small_csv), *FAST).exit_code == 0
    assert show_champion(str(tmp_path / "store"))["version"] == "1"


def test_piped_training_prints_plain_progress_lines(small_csv: Path, tmp_path: Path) -> None:
    # CliRunner's stderr is not a terminal, as in CI or `make run > log`.
    result = run_cli("train", "--data", str(small_csv), "--store", str(tmp_path / "s"), *FAST)
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    trees = [line for line in lines if line.startswith("Growing trees: ")]
    assert len(trees) >= 5 and trees[-1] == "Growing trees: 100% (8 of 8)", lines
    assert any(line.startswith(f"Reading {small_csv.name}: ") for line in lines), lines
    assert "\r" not in result.stderr and "\x1b" not in result.stderr


@pytest.mark.parametrize(
    ("script", "says"),
    [
        ("model_training.py", "Train on a time-ordered split"),
        ("retraining.py", "Train a challenger"),
    ],
)
def test_top_level_scripts_name_themselves_and_exit_as_fraud_does(
    script: str, says: str, tmp_path: Path
) -> None:
    repo = Path(__file__).resolve().parents[1]
    python = [sys.executable, str(repo / script)]
    shown = subprocess.run([*python, "--help"], capture_output=True, text=True, check=True)
    assert shown.stdout.startswith(f"Usage: {script} [OPTIONS]\n"), shown.stdout
    assert says in shown.stdout
    missing = [*python, "--data", str(tmp_path / "none.csv"), "--store", str(tmp_path / "s")]
    failed = subprocess.run(missing, capture_output=True, text=True)
    assert failed.returncode == 2
    assert failed.stderr.startswith("error: dataset not found"), failed.stderr


def _corrupt(df: pd.DataFrame, case: str) -> pd.DataFrame:
    df = df.copy()
    if case == "missing column":
        return df.drop(columns=["V7"])
    if case == "text":
        df["V3"] = df["V3"].astype(object)
        df.loc[17, "V3"] = "abc"
    elif case == "nan":
        df.loc[17, "V3"] = float("nan")
    elif case == "negative amount":
        df.loc[17, "Amount"] = -5.0
    elif case == "no frauds":
        df["Class"] = 0
    elif case == "too few rows":
        df = df.iloc[:500]
    return df


@pytest.mark.parametrize(
    ("case", "column"),
    [
        ("missing column", "V7"),
        ("text", "V3"),
        ("nan", "V3"),
        ("negative amount", "Amount"),
        ("no frauds", "Class"),
        ("too few rows", "rows"),
    ],
)
def test_bad_data_exits_2_names_the_column_and_writes_nothing(
    case: str, column: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    _corrupt(make_synthetic(rows=5000, seed=1), case).to_csv(path, index=False)
    store = tmp_path / "store"
    result = run_cli("train", "--data", str(path), "--store", str(store), *FAST)
    assert result.exit_code == 2
    message = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(message) == 1 and column in message[0], result.stderr
    if case not in ("missing column", "no frauds", "too few rows"):
        assert "18" in message[0] or "17" in message[0], "the faulty row is named"
    assert not store.exists() or not open_store(str(store)).list_keys("models/")


def test_two_concurrent_trainings_both_end_with_distinct_complete_versions(
    small_csv: Path, tmp_path: Path
) -> None:
    store = str(tmp_path / "store")
    cmd = [
        sys.executable,
        "-m",
        "fraud_detection",
        "train",
        "--data",
        str(small_csv),
        "--store",
        store,
        "--trees",
        "8",
    ]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr.decode()
    registry = Registry(open_store(store), "fraud-detector")
    versions = [m["version"] for m in registry.list_versions()]
    assert sorted(versions) == ["1", "2"]
    for version in versions:
        registry.verify(version)


def test_gzip_and_plain_csv_train_the_same(small_csv: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_bytes(gzip.decompress(small_csv.read_bytes()))
    stores = [str(tmp_path / "a"), str(tmp_path / "b")]
    for data, store in zip([small_csv, plain], stores, strict=True):
        assert run_cli("train", "--data", str(data), "--store", store, *FAST).exit_code == 0
    a, b = (show_champion(s) for s in stores)
    assert a["data"]["sha256"] == b["data"]["sha256"]
    assert a["metrics"]["test"]["pr_auc"] == b["metrics"]["test"]["pr_auc"]
