"""ONNX export: the graph scores like scikit-learn, and a disagreeing graph is refused."""

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from fraud_detection.errors import ParityError
from fraud_detection.export import (
    check_parity,
    export_onnx,
    onnx_fraud_probability,
    onnx_session,
)
from fraud_detection.schema import N_FEATURES
from fraud_detection.training import MODEL_FEATURES, fit_model


def _forest(seed: int) -> tuple[Pipeline, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3000, N_FEATURES)) * rng.uniform(0.1, 1000, N_FEATURES)
    y = (x[:, 3] + rng.normal(size=3000) * 2 > 2).astype(int)
    params = {"n_estimators": 20, "random_state": seed}
    return fit_model(x, y, params, MODEL_FEATURES, n_jobs=1), x


def test_onnx_probabilities_match_scikit_learn() -> None:
    model, x = _forest(0)
    onnx_bytes = export_onnx(model)
    assert check_parity(onnx_bytes, model, x) <= 1e-5
    p = onnx_fraud_probability(onnx_session(onnx_bytes), x[:5])
    assert p.shape == (5,)
    assert p.dtype == np.float32


def test_a_graph_that_disagrees_is_refused() -> None:
    model, x = _forest(0)
    other, _ = _forest(1)
    with pytest.raises(ParityError, match="disagree"):
        check_parity(export_onnx(other), model, x)
