"""Gradient-boosted trees by LightGBM, converted by onnxmltools.

The libraries are imported on first use, so commands that never fit or export a booster
skip them (and the OpenMP runtime they load)."""

from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import ClassifierMixin

from .family import Family, TreeCallback, every_tenth, register_classifier_converter

DEFAULTS: dict[str, Any] = {
    "n_estimators": 300,
    "learning_rate": 0.03,
    "num_leaves": 31,
    "min_child_samples": 20,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "random_state": 42,
    "verbose": -1,
}
"""Chosen by time-ordered CV on history only (benchmarks/hparam_search.py --families)."""


def fit(
    x: NDArray[Any],
    y: NDArray[Any],
    params: dict[str, Any],
    n_jobs: int = -1,
    on_trees: TreeCallback | None = None,
    sample_weight: NDArray[np.float64] | None = None,
) -> ClassifierMixin:
    """Fit, reporting boosting rounds as they finish."""
    import lightgbm

    report = every_tenth(int(params.get("n_estimators", 100)), on_trees)
    model = lightgbm.LGBMClassifier(**params, n_jobs=n_jobs)
    model.fit(x, y, sample_weight=sample_weight, callbacks=[lambda env: report(env.iteration + 1)])
    return model


@cache
def register_converter() -> None:
    """onnxmltools' LightGBM converter, for the classifier inside a pipeline."""
    from lightgbm import LGBMClassifier
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

    register_classifier_converter(LGBMClassifier, "LightGbmLGBMClassifier", convert_lightgbm)


FAMILY = Family(
    name="lightgbm",
    estimator="LGBMClassifier",
    defaults=DEFAULTS,
    fit=fit,
    register_converter=register_converter,
    libraries={"lightgbm": "lightgbm", "onnxmltools": "onnxmltools"},
)
