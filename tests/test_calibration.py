"""The calibration map: fitted on validation only, stored as data, checked on load, judged on
test with intervals, and never applied to what the service answers."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from fraud_detection.calibration import (
    FILE,
    MIN_ISOTONIC_FRAUDS,
    expected_calibration_error,
    fit_map,
    fit_platt,
    load_map,
    quality,
)
from fraud_detection.cli import cli
from fraud_detection.data import make_synthetic, time_split
from fraud_detection.errors import IntegrityError
from fraud_detection.inference import onnx_fraud_probability, onnx_session
from fraud_detection.registry import Registry
from fraud_detection.schema import FEATURES, LABEL
from fraud_detection.store import open_store
from fraud_detection.training import (
    DEFAULT_PARAMS,
    TrainingOptions,
    features_and_label,
    split_history,
    train_on,
)

FAST = TrainingOptions(params={**DEFAULT_PARAMS, "n_estimators": 8})


def scored_rows(frauds: int, rows: int = 5000, seed: int = 0) -> tuple[Any, Any]:
    """Scores whose fraud rate rises with the score, as a forest's do."""
    rng = np.random.default_rng(seed)
    scores = rng.beta(0.3, 8.0, rows)
    labels = np.zeros(rows, dtype=np.int8)
    labels[np.argsort(scores + rng.normal(0, 0.05, rows))[-frauds:]] = 1
    return scores, labels


def test_isotonic_map_applies_exactly_as_scikit_learn_predicts() -> None:
    scores, labels = scored_rows(frauds=MIN_ISOTONIC_FRAUDS)
    cal = fit_map(scores, labels)
    assert cal.method == "isotonic"
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels)
    probe = np.r_[scores, np.linspace(-0.5, 1.5, 2001)]
    np.testing.assert_array_equal(cal.apply(probe), iso.predict(probe))


def test_too_few_validation_frauds_give_platt_and_the_map_says_why() -> None:
    scores, labels = scored_rows(frauds=MIN_ISOTONIC_FRAUDS - 1)
    cal = fit_map(scores, labels)
    assert cal.method == "platt"
    assert cal.fitted == {
        "slice": "validation",
        "rows": 5000,
        "frauds": MIN_ISOTONIC_FRAUDS - 1,
        "why": f"{MIN_ISOTONIC_FRAUDS - 1} validation frauds; isotonic needs at least "
        f"{MIN_ISOTONIC_FRAUDS}",
    }


def test_platt_is_the_maximum_likelihood_sigmoid_on_smoothed_targets_and_its_grid_holds_it() -> (
    None
):
    scores, labels = scored_rows(frauds=20)
    a, b = fit_platt(scores, labels.astype(np.float64))
    # The same likelihood, as a weighted logistic regression: each row is a fraud with
    # weight t and legitimate with weight 1 - t (Platt's targets).
    positives, negatives = labels.sum(), len(labels) - labels.sum()
    t = np.where(labels == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    lr = LogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(
        np.r_[scores, scores][:, None],
        np.r_[np.ones(len(t)), np.zeros(len(t))],
        sample_weight=np.r_[t, 1 - t],
    )
    assert a == pytest.approx(-lr.coef_[0, 0], rel=1e-3)
    assert b == pytest.approx(-lr.intercept_[0], rel=1e-3)
    cal = fit_map(scores, labels)
    grid = np.linspace(0, 1, 100_001)
    sigmoid = 1 / (1 + np.exp(a * grid + b))
    assert np.max(np.abs(cal.apply(grid) - sigmoid)) < 1e-4


@pytest.mark.parametrize("frauds", [MIN_ISOTONIC_FRAUDS, 10])
def test_the_stored_map_is_json_data_that_loads_back_the_same_function(frauds: int) -> None:
    scores, labels = scored_rows(frauds=frauds)
    cal = fit_map(scores, labels)
    stored = json.loads(cal.to_json())
    assert stored["method"] == cal.method
    assert ("x" in stored) == (cal.method == "isotonic")
    assert ("a" in stored) == (cal.method == "platt")
    loaded = load_map(cal.to_json())
    assert loaded == cal
    np.testing.assert_array_equal(loaded.apply(scores), cal.apply(scores))


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"format": 1, "method": "isotonic", "fitted": {}, "x": [0.1, 0.1], "y": [0, 1]}',
        b'{"format": 1, "method": "isotonic", "fitted": {}, "x": [0.1, 0.2], "y": [1, 0]}',
        b'{"format": 1, "method": "isotonic", "fitted": {}, "x": [0.1, 0.2], "y": [0, 2]}',
        b'{"format": 1, "method": "isotonic", "fitted": {}, "x": [0.1], "y": [0, 1]}',
        b'{"format": 1, "method": "beta", "fitted": {}}',
        b'{"format": 2, "method": "platt", "fitted": {}, "a": -1, "b": 2}',
        b'{"format": 1, "method": "platt", "fitted": {}, "a": "x", "b": 2}',
    ],
)
def test_a_file_that_is_not_a_map_is_refused(body: bytes) -> None:
    with pytest.raises(IntegrityError, match=FILE):
        load_map(body)


def test_brier_and_ece_equal_a_hand_computation() -> None:
    scores = np.array([0.0, 0.0, 0.004, 0.3, 0.3, 0.95])
    labels = np.array([0, 0, 1, 0, 1, 1])
    # Bins (edges 0.001 .. 0.9): {0, 0} below 0.001, {0.004} in [0.001, 0.005),
    # {0.3, 0.3} in [0.3, 0.5), {0.95} at or above 0.9.
    gaps = [0.0, 0.004 - 1, 0.6 - 1, 0.95 - 1]
    assert expected_calibration_error(scores, labels) == pytest.approx(sum(map(abs, gaps)) / 6)
    cal = fit_map(scores, labels, min_isotonic_frauds=1)
    values, intervals = quality(cal, scores, labels, resamples=50)
    assert values["uncalibrated_brier"] == pytest.approx(np.mean((scores - labels) ** 2))
    assert values["brier"] == pytest.approx(np.mean((cal.apply(scores) - labels) ** 2))
    assert values["uncalibrated_ece"] == pytest.approx(sum(map(abs, gaps)) / 6)
    for key in ("brier", "ece", "uncalibrated_brier", "uncalibrated_ece"):
        low, high = intervals[key]
        assert low <= values[key] <= high


@pytest.fixture(scope="module")
def synthetic() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    df = make_synthetic(rows=20_000, seed=3)
    history, test = time_split(df, 0.8)
    return df, history, test


def test_calibration_is_fitted_on_validation_scores_alone_never_on_test_rows(
    synthetic: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    df, history, test = synthetic
    flipped = test.assign(**{LABEL: 1 - test[LABEL]})
    runs = [
        train_on(history, slice_, FAST, data=df, source="s", model_name="m")
        for slice_ in (test, flipped)
    ]
    # Test labels turned upside down change the judgement of the map, never the map.
    assert runs[0].files[FILE] == runs[1].files[FILE]
    quality_of = [run.manifest["calibration"]["test"]["brier"] for run in runs]
    assert quality_of[0] < quality_of[1]
    # And the map is the one the served model's validation scores give.
    _, validation = split_history(history, FAST.validation_fraction)
    x_val, y_val = features_and_label(validation)
    session = onnx_session(runs[0].files["model.onnx"])
    expected = fit_map(onnx_fraud_probability(session, x_val), y_val)
    assert load_map(runs[0].files[FILE]) == expected


def test_training_records_the_map_and_its_quality_in_manifest_and_report(
    synthetic: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    df, history, test = synthetic
    run = train_on(history, test, FAST, data=df, source="s", model_name="m")
    calibration = run.manifest["calibration"]
    assert calibration["file"] == FILE
    assert calibration["method"] == json.loads(run.files[FILE])["method"]
    assert calibration["fitted"]["slice"] == "validation"
    assert calibration["fitted"]["rows"] == run.manifest["data"]["validation_rows"]
    for key in ("brier", "ece"):
        low, high = calibration["test_ci"][key]
        assert low <= calibration["test"][key] <= high
    report = run.files["report.md"].decode()
    assert "## Calibration" in report
    assert f"{calibration['test']['brier']:.6f}" in report


def test_the_service_answers_the_raw_onnx_score_bit_for_bit_never_the_calibrated_one(
    client: FlaskClient, store: Path
) -> None:
    registry = Registry(open_store(str(store)), "fraud-detector")
    manifest = registry.manifest("champion")
    cal = load_map(registry.read_file("champion", FILE))
    rows = make_synthetic(rows=3000, seed=11)
    fraud_like = rows[rows[LABEL] == 1]
    batch = pd.concat([fraud_like, rows.head(400 - len(fraud_like))])
    x, _ = features_and_label(batch)
    raw = onnx_fraud_probability(onnx_session(registry.read_file("champion", "model.onnx")), x)
    instances = [dict(zip(FEATURES, map(float, row), strict=True)) for row in x]
    answers = client.post("/predict", json={"instances": instances}).get_json()["predictions"]
    # The answer is the served model's float32 score, rounded to 6 digits as always.
    assert [a["fraud_probability"] for a in answers] == [round(float(p), 6) for p in raw]
    assert all(a["threshold"] == manifest["threshold"] for a in answers)
    assert [a["is_fraud"] for a in answers] == list(raw >= manifest["threshold"])
    # The map is there and would change the answers, so this test can tell them apart.
    assert np.mean(np.round(cal.apply(raw), 6) != np.round(raw, 6)) > 0.9


def without_calibration(files: dict[str, bytes], manifest: dict[str, Any]) -> tuple[dict, dict]:
    """A version as training made it before calibration maps existed."""
    files = {name: data for name, data in files.items() if name != FILE}
    return files, {key: value for key, value in manifest.items() if key != "calibration"}


def test_retrain_gives_the_challenger_a_map_of_its_own_validation_part(
    synthetic: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    df, history, test = synthetic
    old = train_on(history, test, FAST, data=df, source="s", model_name="fraud-detector")
    registry = Registry(open_store(str(tmp_path / "store")), "fraud-detector")
    version = registry.register(*without_calibration(old.files, old.manifest))["version"]
    registry.promote(str(version), reason="trained before calibration")
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    args = ["retrain", "--data", str(path), "--store", str(tmp_path / "store")]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    challenger = registry.manifest("2")
    cal = load_map(registry.read_file("2", FILE))  # sha256-checked against the manifest
    assert challenger["calibration"]["method"] == cal.method
    assert challenger["calibration"]["fitted"]["rows"] == challenger["data"]["validation_rows"]
    assert FILE not in registry.manifest("1")["files"]
