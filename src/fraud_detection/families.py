"""Model families (RandomForest, XGBoost, LightGBM): their defaults and how each is fitted."""

import warnings
from collections.abc import Callable
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray
from sklearn.base import ClassifierMixin
from sklearn.ensemble import RandomForestClassifier

Algorithm = Literal["rf", "xgboost", "lightgbm"]
ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)

TreeCallback = Callable[[int, int], None]

DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 100,
    "max_samples": 0.3,
    "min_samples_leaf": 10,
    "class_weight": "balanced_subsample",
    "max_features": "sqrt",
    "random_state": 42,
}
"""RandomForest, chosen by time-ordered validation on history only (notebooks/model_prototyping)."""

FAMILY_DEFAULTS: dict[Algorithm, dict[str, Any]] = {
    "rf": DEFAULT_PARAMS,
    # Both boosters: chosen by time-ordered CV on history only (benchmarks/hparam_search.py).
    "xgboost": {
        "n_estimators": 300,
        "max_depth": 4,
        "learning_rate": 0.05,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "tree_method": "hist",
        "random_state": 42,
    },
    "lightgbm": {
        "n_estimators": 300,
        "learning_rate": 0.03,
        "num_leaves": 31,
        "min_child_samples": 20,
        "subsample": 0.8,
        "subsample_freq": 1,
        "colsample_bytree": 0.8,
        "random_state": 42,
        "verbose": -1,
    },
}

ESTIMATOR_NAMES: dict[Algorithm, str] = {
    "rf": "RandomForestClassifier",
    "xgboost": "XGBClassifier",
    "lightgbm": "LGBMClassifier",
}


def fit_forest(
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


def _every_tenth(total: int, on_trees: TreeCallback | None) -> Callable[[int], None]:
    """A per-round hook that reports progress about ten times over `total` rounds."""
    step = max(total // 10, 1)

    def report(done: int) -> None:
        if on_trees and (done % step == 0 or done == total):
            on_trees(done, total)

    return report


def fit_xgboost(
    x: NDArray[Any],
    y: NDArray[Any],
    params: dict[str, Any],
    n_jobs: int = -1,
    on_trees: TreeCallback | None = None,
    sample_weight: NDArray[np.float64] | None = None,
) -> ClassifierMixin:
    """Gradient-boosted trees (XGBoost), reporting boosting rounds as they finish."""
    import xgboost

    report = _every_tenth(int(params.get("n_estimators", 100)), on_trees)

    class Progress(xgboost.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            report(epoch + 1)
            return False  # never stop early

    model = xgboost.XGBClassifier(**params, n_jobs=n_jobs, callbacks=[Progress()])
    model.fit(x, y, sample_weight=sample_weight)
    # The callback is a closure over the progress bar: it must not travel with the model.
    model.set_params(callbacks=None)
    return model


def fit_lightgbm(
    x: NDArray[Any],
    y: NDArray[Any],
    params: dict[str, Any],
    n_jobs: int = -1,
    on_trees: TreeCallback | None = None,
    sample_weight: NDArray[np.float64] | None = None,
) -> ClassifierMixin:
    """Gradient-boosted trees (LightGBM), reporting boosting rounds as they finish."""
    import lightgbm

    report = _every_tenth(int(params.get("n_estimators", 100)), on_trees)
    model = lightgbm.LGBMClassifier(**params, n_jobs=n_jobs)
    model.fit(x, y, sample_weight=sample_weight, callbacks=[lambda env: report(env.iteration + 1)])
    return model


FITTERS: dict[Algorithm, Callable[..., ClassifierMixin]] = {
    "rf": fit_forest,
    "xgboost": fit_xgboost,
    "lightgbm": fit_lightgbm,
}


def fit_estimator(
    algorithm: Algorithm,
    x: NDArray[Any],
    y: NDArray[Any],
    params: dict[str, Any],
    n_jobs: int = -1,
    on_trees: TreeCallback | None = None,
    sample_weight: NDArray[np.float64] | None = None,
) -> ClassifierMixin:
    """Fit one family's classifier on the model features (rows weighted when given)."""
    return FITTERS[algorithm](x, y, params, n_jobs, on_trees, sample_weight)


def family_params(algorithm: Algorithm, trees: int | None = None) -> dict[str, Any]:
    """The family's defaults, with the number of trees (boosting rounds) replaced if given."""
    params = dict(FAMILY_DEFAULTS[algorithm])
    if trees is not None:
        params["n_estimators"] = trees
    return params
