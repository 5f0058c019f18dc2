"""The training pipeline, as a readable sequence of steps from a DataFrame to store files."""

import io
import json
import os
import platform
import subprocess
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

from . import __version__
from .data import dataset_fingerprint, time_split
from .evaluation import CostModel, ThresholdRule, choose_threshold, classification_metrics
from .export import check_parity, export_onnx
from .reference import build_reference
from .report import plot_confusion, plot_pr_curves, training_report
from .schema import FEATURES, LABEL

DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 100,
    "max_samples": 0.3,
    "min_samples_leaf": 10,
    "class_weight": "balanced_subsample",
    "max_features": "sqrt",
    "random_state": 42,
}
"""Chosen by time-ordered validation on history only (notebooks/model_prototyping.ipynb)."""

MODEL_FEATURES: tuple[str, ...] = tuple(f for f in FEATURES if f != "Time")
"""What the forest sees. `Time` is accepted on input but not used: every later transaction
lies past the training range, so splits on absolute time cannot generalise."""

TreeCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class TrainingOptions:
    """What a training run may vary; defaults are the measured production choice."""

    params: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    model_features: tuple[str, ...] = MODEL_FEATURES
    history_fraction: float = 0.8
    validation_fraction: float = 0.2
    threshold_rule: ThresholdRule = "f1"
    min_precision: float = 0.9
    review_fee: float = CostModel().review_fee
    n_jobs: int = -1


@dataclass(frozen=True)
class TrainedModel:
    """Everything a run produced: the files to store and the manifest describing them."""

    files: dict[str, bytes]
    manifest: dict[str, Any]
    model: Pipeline


def features_and_label(df: pd.DataFrame) -> tuple[NDArray[np.float64], NDArray[np.int8]]:
    """The feature matrix in schema order and the label vector."""
    x = df.loc[:, list(FEATURES)].to_numpy(dtype=np.float64)
    return x, df[LABEL].to_numpy(dtype=np.int8)


def fit_forest(
    x: NDArray[Any],
    y: NDArray[Any],
    params: dict[str, Any],
    n_jobs: int = -1,
    on_trees: TreeCallback | None = None,
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
            model.fit(x, y)
        if on_trees:
            on_trees(grown, total)
    model.set_params(warm_start=False)
    return model


def fit_model(
    x: NDArray[Any],
    y: NDArray[Any],
    params: dict[str, Any],
    model_features: tuple[str, ...] = MODEL_FEATURES,
    n_jobs: int = -1,
    on_trees: TreeCallback | None = None,
) -> Pipeline:
    """Column selection then the forest, as one pipeline over the full 30-field input."""
    columns = [FEATURES.index(name) for name in model_features]
    select = ColumnTransformer([("features", "passthrough", columns)], remainder="drop").fit(x)
    forest = fit_forest(select.transform(x), y, params, n_jobs, on_trees)
    return Pipeline([("select", select), ("forest", forest)])


def split_history(
    history: pd.DataFrame, validation_fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Earlier part of history to fit on, later part to choose the threshold on."""
    cut = int(len(history) * (1 - validation_fraction))
    return history.iloc[:cut], history.iloc[cut:]


def code_revision() -> str:
    """The git commit the code runs from, or the package version outside a checkout."""
    sha = os.environ.get("GITHUB_SHA")
    if sha:
        return sha
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"fraud-detection {__version__}"


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape the artifacts."""
    import onnx
    import onnxruntime
    import skl2onnx
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "fraud-detection": __version__,
    }


def train(
    df: pd.DataFrame,
    options: TrainingOptions = TrainingOptions(),
    *,
    source: str,
    model_name: str,
    on_trees: TreeCallback | None = None,
) -> TrainedModel:
    """Split by time, fit, choose the threshold, test once, export and check ONNX, report."""
    history, test = time_split(df, options.history_fraction)
    return train_on(
        history, test, options, data=df, source=source, model_name=model_name, on_trees=on_trees
    )


def train_on(
    history: pd.DataFrame,
    test: pd.DataFrame,
    options: TrainingOptions = TrainingOptions(),
    *,
    data: pd.DataFrame,
    source: str,
    model_name: str,
    on_trees: TreeCallback | None = None,
) -> TrainedModel:
    """`train` on a split made by the caller: fit and validate on `history`, test on `test`;
    `data` is the whole dataset the manifest fingerprints."""
    started = time.perf_counter()
    synthetic = bool(data.attrs.get("synthetic", False))
    fit_part, validation = split_history(history, options.validation_fraction)
    x_fit, y_fit = features_and_label(fit_part)
    x_val, y_val = features_and_label(validation)
    x_test, y_test = features_and_label(test)

    model = fit_model(
        x_fit, y_fit, options.params, options.model_features, options.n_jobs, on_trees
    )

    cost = CostModel(options.review_fee)
    val_scores = model.predict_proba(x_val)[:, 1]
    amount = FEATURES.index("Amount")
    threshold = choose_threshold(
        y_val,
        val_scores,
        options.threshold_rule,
        min_precision=options.min_precision,
        amounts=x_val[:, amount],
        cost_model=cost,
    )
    test_scores = model.predict_proba(x_test)[:, 1]
    metrics = {
        "validation": classification_metrics(
            y_val,
            val_scores,
            threshold,
            amounts=x_val[:, amount],
            cost_model=cost,
            slice_name="validation",
        ),
        "test": classification_metrics(
            y_test,
            test_scores,
            threshold,
            amounts=x_test[:, amount],
            cost_model=cost,
            slice_name="test",
        ),
    }

    onnx_bytes = export_onnx(model)
    parity_gap = check_parity(onnx_bytes, model, x_val)
    reference = build_reference(x_val, FEATURES, val_scores, threshold)

    manifest: dict[str, Any] = {
        "model_name": model_name,
        "algorithm": "RandomForestClassifier",
        "params": options.params,
        "threshold": threshold,
        "threshold_rule": options.threshold_rule,
        "features": list(FEATURES),
        "model_features": list(options.model_features),
        "metrics": metrics,
        "data": {
            **dataset_fingerprint(data),
            "source": source,
            "synthetic": synthetic,
            "history_fraction": options.history_fraction,
            "train_rows": len(fit_part),
            "validation_rows": len(validation),
            "test_rows": len(test),
            "train_time_range": [float(fit_part["Time"].min()), float(fit_part["Time"].max())],
            "test_time_range": [float(test["Time"].min()), float(test["Time"].max())],
        },
        "onnx": {"input": "input", "output": "probabilities", "dtype": "float32"},
        "onnx_parity_max_abs_diff": parity_gap,
        "code_revision": code_revision(),
        "library_versions": library_versions(),
    }
    manifest["training_seconds"] = round(time.perf_counter() - started, 2)

    joblib_buf = io.BytesIO()
    joblib.dump(model, joblib_buf, compress=3)
    files = {
        "model.onnx": onnx_bytes,
        "model.joblib": joblib_buf.getvalue(),
        "reference.json": json.dumps(reference, indent=1).encode(),
        "report.md": training_report(manifest).encode(),
        "pr_curve.png": plot_pr_curves(
            {
                "validation": (y_val, val_scores, metrics["validation"]["pr_auc"]),
                "test": (y_test, test_scores, metrics["test"]["pr_auc"]),
            },
            title="Precision-recall" + (" (SYNTHETIC DATA)" if synthetic else ""),
        ),
        "confusion_matrix.png": plot_confusion(
            metrics["test"]["confusion_matrix"],
            title=f"Test, threshold {threshold:.3f}" + (" (SYNTHETIC)" if synthetic else ""),
        ),
    }
    return TrainedModel(files=files, manifest=manifest, model=model)
