"""ONNX export: every family's graph scores like the fitted model, a disagreeing graph is
refused, and the service's loader scores any family's version."""

from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from fraud_detection.data import make_synthetic
from fraud_detection.errors import ParityError
from fraud_detection.export import (
    check_parity,
    export_onnx,
    onnx_fraud_probability,
    onnx_session,
)
from fraud_detection.families import ALGORITHMS, Algorithm
from fraud_detection.registry import sha256_hex
from fraud_detection.schema import N_FEATURES
from fraud_detection.serving.model import build_model
from fraud_detection.training import MODEL_FEATURES, TrainingOptions, features_and_label, fit_model
from fraud_detection.training import train as train_model

FEW_TREES: dict[Algorithm, dict[str, Any]] = {
    "rf": {"n_estimators": 20},
    "xgboost": {"n_estimators": 20, "max_depth": 4},
    "lightgbm": {"n_estimators": 20, "num_leaves": 15, "verbose": -1},
}


def _fitted(algorithm: Algorithm, seed: int) -> tuple[Pipeline, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3000, N_FEATURES)) * rng.uniform(0.1, 1000, N_FEATURES)
    y = (x[:, 3] + rng.normal(size=3000) * 2 > 2).astype(int)
    params = {**FEW_TREES[algorithm], "random_state": seed}
    return fit_model(x, y, params, MODEL_FEATURES, n_jobs=1, algorithm=algorithm), x


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_onnx_probabilities_match_the_fitted_model(algorithm: Algorithm) -> None:
    model, x = _fitted(algorithm, 0)
    onnx_bytes = export_onnx(model)
    assert check_parity(onnx_bytes, model, x) <= 1e-5
    session = onnx_session(onnx_bytes)
    outputs = {o.name: (o.type, o.shape) for o in session.get_outputs()}
    assert outputs["probabilities"] == ("tensor(float)", [None, 2])
    p = onnx_fraud_probability(session, x[:5])
    assert p.shape == (5,)
    assert p.dtype == np.float32


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_graph_that_disagrees_is_refused(algorithm: Algorithm) -> None:
    model, x = _fitted(algorithm, 0)
    other, _ = _fitted(algorithm, 1)
    with pytest.raises(ParityError, match="disagree"):
        check_parity(export_onnx(other), model, x)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_service_loader_scores_every_family(algorithm: Algorithm) -> None:
    df = make_synthetic(rows=20_000, seed=5)
    options = TrainingOptions(algorithm=algorithm, params=FEW_TREES[algorithm], n_jobs=1)
    trained = train_model(df, options, source="synthetic", model_name="m")
    assert trained.manifest["family"] == algorithm
    manifest = {
        **trained.manifest,
        "version": "1",
        "files": {name: sha256_hex(data) for name, data in trained.files.items()},
    }
    loaded = build_model(trained.files, manifest, source="test")
    x, _ = features_and_label(df.tail(50))
    expected = trained.model.predict_proba(x)[:, 1]
    assert np.max(np.abs(loaded.score(x.astype(np.float32)) - expected)) <= 1e-5
