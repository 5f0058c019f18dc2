"""RandomForest (scikit-learn): the production default."""

import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import RandomForestClassifier

from .family import Family, TreeCallback

DEFAULTS: dict[str, Any] = {
    "n_estimators": 100,
    "max_samples": 0.3,
    "min_samples_leaf": 10,
    "class_weight": "balanced_subsample",
    "max_features": "sqrt",
    "random_state": 42,
}
"""Chosen by time-ordered validation on history only (notebooks/model_prototyping)."""


def fit(
    x: NDArray[Any],
    y: NDArray[Any],
    params: dict[str, Any],
    n_jobs: int = -1,
    on_trees: TreeCallback | None = None,
    sample_weight: NDArray[np.float64] | None = None,
) -> RandomForestClassifier:
    """Grow the forest in chunks so progress can be shown; same trees as one fit."""
    total = int(params.get("n_estimators", 100))
    chunk = max(total // 10, 1)
    model = RandomForestClassifier(**{**params, "n_estimators": 0}, warm_start=True, n_jobs=n_jobs)
    grown = 0
    while grown < total:
        grown = min(grown + chunk, total)
        model.set_params(n_estimators=grown)
        # warm_start advances the seed stream, so chunked growth equals a single fit.
        with warnings.catch_warnings():
            # The warning is about refitting on different data; every chunk sees the same rows.
            warnings.filterwarnings("ignore", message="class_weight presets", category=UserWarning)
            model.fit(x, y, sample_weight=sample_weight)
        if on_trees:
            on_trees(grown, total)
    model.set_params(warm_start=False)
    return model


# skl2onnx converts scikit-learn's forest itself: no converter to register.
FAMILY = Family(name="rf", estimator="RandomForestClassifier", defaults=DEFAULTS, fit=fit)
