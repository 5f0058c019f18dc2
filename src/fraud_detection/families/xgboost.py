"""Gradient-boosted trees by XGBoost, converted by onnxmltools.

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
    "max_depth": 4,
    "learning_rate": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "tree_method": "hist",
    "random_state": 42,
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
    import xgboost

    report = every_tenth(int(params.get("n_estimators", 100)), on_trees)

    class Progress(xgboost.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            report(epoch + 1)
            return False  # never stop early

    model = xgboost.XGBClassifier(**params, n_jobs=n_jobs, callbacks=[Progress()])
    model.fit(x, y, sample_weight=sample_weight)
    # The callback is a closure over the progress bar: it must not travel with the model.
    model.set_params(callbacks=None)
    return model


@cache
def register_converter() -> None:
    """onnxmltools' XGBoost converter, for the classifier inside a pipeline."""
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from xgboost import XGBClassifier

    register_classifier_converter(XGBClassifier, "XGBoostXGBClassifier", convert_xgboost)


FAMILY = Family(
    name="xgboost",
    estimator="XGBClassifier",
    defaults=DEFAULTS,
    fit=fit,
    register_converter=register_converter,
    libraries={"xgboost": "xgboost-cpu", "onnxmltools": "onnxmltools"},
)
