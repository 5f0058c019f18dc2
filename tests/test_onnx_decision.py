"""The ONNX file agrees with the service: its `label` output is the served decision at the
version's own threshold, so a reader of the file alone decides as the service does."""

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from conftest import MakeApp
from fraud_detection.data import load_dataset, make_synthetic, time_split
from fraud_detection.export import export_onnx
from fraud_detection.families import ALGORITHMS, Algorithm
from fraud_detection.inference import DECISION_RULE, decide
from fraud_detection.registry import Registry, sha256_hex
from fraud_detection.schema import FEATURES
from fraud_detection.serving.model import build_model
from fraud_detection.store import open_store
from fraud_detection.training import (
    DEFAULT_PARAMS,
    TrainedModel,
    TrainingOptions,
    features_and_label,
    train,
)
from fraud_detection.tree_arrays import with_cover

FEW_TREES: dict[Algorithm, dict[str, Any]] = {
    "rf": {"n_estimators": 10},
    "xgboost": {"n_estimators": 10, "max_depth": 3},
    "lightgbm": {"n_estimators": 10, "num_leaves": 8, "verbose": -1},
}


def _label_and_probability(onnx_bytes: bytes, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a reader with onnxruntime alone gets from the file: no code of this package."""
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    label, probabilities = session.run(["label", "probabilities"], {"input": x.astype(np.float32)})
    return label, probabilities[:, 1]


def _served(trained: TrainedModel, onnx_bytes: bytes | None = None) -> Any:
    files = {**trained.files, "model.onnx": onnx_bytes or trained.files["model.onnx"]}
    digests = {name: sha256_hex(data) for name, data in files.items()}
    return build_model(files, {**trained.manifest, "version": "1", "files": digests}, "test")


def test_the_onnx_file_alone_gives_the_served_decisions_on_real_rows(
    real_data: Path, make_app: MakeApp, tmp_path: Path
) -> None:
    df = load_dataset(str(real_data))
    options = TrainingOptions(params={**DEFAULT_PARAMS, "n_estimators": 30})
    trained = train(df, options, source=str(real_data), model_name="fraud-detector")
    assert trained.manifest["onnx"]["label"] == DECISION_RULE
    registry = Registry(open_store(str(tmp_path / "store")), "fraud-detector")
    version = str(registry.register(trained.files, trained.manifest)["version"])
    registry.promote(version, reason="the model under test")
    client = make_app(tmp_path / "store").test_client()

    rows = time_split(df, 0.8)[1]  # the test slice: rows the model never saw
    served, scores = [], []
    for start in range(0, len(rows), 1000):
        part = rows.iloc[start : start + 1000]
        instances = [{f: float(v) for f, v in zip(FEATURES, r, strict=True)}
                     for r in part[list(FEATURES)].itertuples(index=False)]  # fmt: skip
        answer = client.post("/predict", json={"instances": instances, "explain": False})
        assert answer.status_code == 200, answer.get_json()
        served += [p["is_fraud"] for p in answer.get_json()["predictions"]]
        scores += [p["fraud_probability"] for p in answer.get_json()["predictions"]]

    label, probability = _label_and_probability(registry.read_file(version, "model.onnx"),
                                                features_and_label(rows)[0])  # fmt: skip
    served_decisions = np.array(served)
    assert served_decisions.sum() > 0
    np.testing.assert_array_equal(label.astype(bool), served_decisions)
    np.testing.assert_allclose(probability, scores, rtol=0, atol=1e-6)
    # Where the threshold and the exporters' 0.5 cut part, the file decides as the service.
    threshold = float(trained.manifest["threshold"])
    parted = (probability >= 0.5) != (probability >= np.float32(threshold))
    assert parted.sum() > 0, f"no test row between {threshold:.4f} and 0.5"
    assert np.all(label[parted] == served_decisions[parted])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_family_labels_at_its_own_threshold_and_still_explains(algorithm: Algorithm) -> None:
    df = make_synthetic(rows=20_000, seed=5)
    options = TrainingOptions(algorithm=algorithm, params=FEW_TREES[algorithm], n_jobs=1)
    trained = train(df, options, source="synthetic", model_name="m")
    x, _ = features_and_label(df)
    label, probability = _label_and_probability(trained.files["model.onnx"], x)
    threshold = float(trained.manifest["threshold"])
    np.testing.assert_array_equal(label.astype(bool), decide(probability, threshold))
    served = _served(trained)
    np.testing.assert_array_equal(decide(served.score(x.astype(np.float32)), threshold), label)
    assert served.explainer is not None


def test_a_version_exported_before_the_decision_label_still_loads() -> None:
    df = make_synthetic(rows=20_000, seed=5)
    options = TrainingOptions(params={**DEFAULT_PARAMS, "n_estimators": 10}, n_jobs=1)
    trained = train(df, options, source="synthetic", model_name="m")
    x, _ = features_and_label(df.tail(500))
    # As versions were exported before: the exporter's own label, and no `onnx.label` key.
    fit_x, _ = features_and_label(time_split(df, 0.8)[0])
    old = with_cover(export_onnx(trained.model), fit_x)
    manifest = {**trained.manifest, "onnx": {"input": "input", "output": "probabilities"}}
    loaded = _served(TrainedModel(trained.files, manifest, trained.model), old)
    current = _served(trained)
    x32 = x.astype(np.float32)
    np.testing.assert_array_equal(loaded.score(x32), current.score(x32))
    assert loaded.explainer is not None
