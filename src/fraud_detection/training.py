"""The training pipeline, as a readable sequence of steps from a DataFrame to store files."""

import io
import json
import platform
import subprocess
import time
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any, NamedTuple

import joblib
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from . import __version__, bootstrap
from .calibration import FILE as CALIBRATION_FILE
from .calibration import calibrate
from .data import dataset_fingerprint, time_split
from .evaluation import CostModel, ThresholdRule, choose_threshold, classification_metrics
from .export import check_parity, export_onnx, with_decision
from .families import ALGORITHMS, FAMILIES, Algorithm, TreeCallback, rf
from .inference import DECISION_RULE
from .reference import build_reference
from .report import plot_confusion, plot_pr_curves, training_report
from .schema import FEATURES, LABEL
from .tree_arrays import with_cover

DEFAULT_PARAMS = rf.DEFAULTS
"""The forest's defaults, by the name the notebook, the tests and the benchmarks use."""
MODEL_FEATURES: tuple[str, ...] = tuple(f for f in FEATURES if f != "Time")
"""What the forest sees. `Time` is accepted on input but not used: every later transaction
lies past the training range, so splits on absolute time cannot generalise."""


@dataclass(frozen=True)
class TrainingOptions:
    """What a training run may vary; defaults are the measured production choice."""

    algorithm: Algorithm = "rf"
    params: dict[str, Any] | None = None
    """None means the family's defaults (`Family.defaults`)."""
    model_features: tuple[str, ...] = MODEL_FEATURES
    history_fraction: float = 0.8
    validation_fraction: float = 0.2
    threshold_rule: ThresholdRule = "f1"
    min_precision: float = 0.9
    review_fee: float = CostModel().review_fee
    n_jobs: int = -1
    commit: str = ""
    """The commit the code runs from, when the caller knows it (GITHUB_SHA in CI)."""

    @property
    def family_params(self) -> dict[str, Any]:
        """The hyperparameters this run fits with."""
        return FAMILIES[self.algorithm].params() if self.params is None else dict(self.params)


@dataclass(frozen=True)
class TrainedModel:
    """Everything a run produced: the files to store and the manifest describing them."""

    files: dict[str, bytes]
    manifest: dict[str, Any]
    model: Pipeline


@dataclass(frozen=True)
class WeightedRows:
    """Rows that only join the fit, each with its sample weight: a row kept from a
    downsampled class weighs the inverse of its sampling rate, so the class keeps its mass."""

    rows: pd.DataFrame
    weights: NDArray[np.float64]


def features_and_label(df: pd.DataFrame) -> tuple[NDArray[np.float64], NDArray[np.int8]]:
    """The feature matrix in schema order and the label vector."""
    x = df.loc[:, list(FEATURES)].to_numpy(dtype=np.float64)
    return x, df[LABEL].to_numpy(dtype=np.int8)


def fit_model(
    x: NDArray[Any],
    y: NDArray[Any],
    params: dict[str, Any],
    model_features: tuple[str, ...] = MODEL_FEATURES,
    n_jobs: int = -1,
    on_trees: TreeCallback | None = None,
    algorithm: Algorithm = "rf",
    sample_weight: NDArray[np.float64] | None = None,
) -> Pipeline:
    """Column selection then the classifier, as one pipeline over the full 30-field input."""
    columns = [FEATURES.index(name) for name in model_features]
    select = ColumnTransformer([("features", "passthrough", columns)], remainder="drop").fit(x)
    fit = FAMILIES[algorithm].fit
    classifier = fit(select.transform(x), y, params, n_jobs, on_trees, sample_weight)
    # The step keeps its historical name: stored pipelines of every family read alike.
    return Pipeline([("select", select), ("forest", classifier)])


def evaluate_slices(
    slices: dict[str, tuple[NDArray[Any], NDArray[Any], NDArray[Any]]],
    threshold: float,
    cost: CostModel,
) -> dict[str, Any]:
    """Metrics of each slice (x, y, scores) at one threshold, and `<slice>_ci` intervals beside."""
    amount = FEATURES.index("Amount")
    metrics: dict[str, Any] = {}
    for name, (x, y, scores) in slices.items():
        amounts = x[:, amount]
        metrics[name] = classification_metrics(
            y, scores, threshold, amounts=amounts, cost_model=cost, slice_name=name
        )
        metrics[f"{name}_ci"] = bootstrap.metric_intervals(
            y, scores, threshold, amounts=amounts, review_fee=cost.review_fee
        )
    return metrics


class FitRows(NamedTuple):
    """The rows a model is fitted on; `weights` None when every row weighs one."""

    x: NDArray[np.float64]
    y: NDArray[np.int8]
    weights: NDArray[np.float64] | None


def fit_rows(fit_part: pd.DataFrame, extra_fit: WeightedRows | None) -> FitRows:
    """The fit part, then any weighted extra rows."""
    x_fit, y_fit = features_and_label(fit_part)
    if extra_fit is None or not len(extra_fit.rows):
        return FitRows(x_fit, y_fit, None)
    x_extra, y_extra = features_and_label(extra_fit.rows)
    weights = np.concatenate([np.ones(len(fit_part)), extra_fit.weights])
    return FitRows(np.vstack([x_fit, x_extra]), np.concatenate([y_fit, y_extra]), weights)


def fit_with_threshold(
    rows: FitRows,
    validation: pd.DataFrame,
    options: TrainingOptions,
    on_trees: TreeCallback | None = None,
) -> tuple[Pipeline, float, NDArray[np.float64]]:
    """Fit on `rows` (weighted when given); the threshold the rule prefers on the later,
    unweighted `validation` rows, and their scores."""
    x_val, y_val = features_and_label(validation)
    model = fit_model(
        rows.x,
        rows.y,
        options.family_params,
        options.model_features,
        options.n_jobs,
        on_trees,
        options.algorithm,
        rows.weights,
    )
    val_scores = model.predict_proba(x_val)[:, 1]
    threshold = choose_threshold(
        y_val,
        val_scores,
        options.threshold_rule,
        min_precision=options.min_precision,
        amounts=x_val[:, FEATURES.index("Amount")],
        cost_model=CostModel(options.review_fee),
    )
    return model, threshold, val_scores


def split_history(
    history: pd.DataFrame, validation_fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Earlier part of history to fit on, later part to choose the threshold on."""
    cut = int(len(history) * (1 - validation_fraction))
    return history.iloc[:cut], history.iloc[cut:]


def code_revision(commit: str = "") -> str:
    """`commit` when known, else the git commit the code runs from, or the package version
    outside a checkout."""
    if commit:
        return commit
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
        # Each family's own, read from the installed metadata: importing the boosters would
        # load OpenMP for nothing when a forest is trained.
        **{
            library: metadata.version(distribution)
            for family in FAMILIES.values()
            for library, distribution in family.libraries.items()
        },
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
    extra_fit: WeightedRows | None = None,
) -> TrainedModel:
    """Split by time, fit, choose the threshold, test once, export and check ONNX, report."""
    history, test = time_split(df, options.history_fraction)
    return train_on(
        history,
        test,
        options,
        data=with_extra_rows(df, extra_fit),
        source=source,
        model_name=model_name,
        on_trees=on_trees,
        extra_fit=extra_fit,
    )


def with_extra_rows(df: pd.DataFrame, extra_fit: WeightedRows | None) -> pd.DataFrame:
    """The dataset and the extra fit rows: every row a model saw, as the manifest
    fingerprints them."""
    if extra_fit is None or extra_fit.rows.empty:
        return df
    data = pd.concat([df, extra_fit.rows], ignore_index=True)
    data.attrs = dict(df.attrs)
    return data


def train_on(
    history: pd.DataFrame,
    test: pd.DataFrame,
    options: TrainingOptions = TrainingOptions(),
    *,
    data: pd.DataFrame,
    source: str,
    model_name: str,
    on_trees: TreeCallback | None = None,
    extra_fit: WeightedRows | None = None,
) -> TrainedModel:
    """`train` on a split made by the caller: fit and validate on `history`, test on `test`;
    `data` is the whole dataset the manifest fingerprints. `extra_fit` rows join the fit part
    only, weighted; validation and test stay unweighted, so the threshold and the metrics are
    judged on rows as they occur."""
    started = time.perf_counter()
    synthetic = bool(data.attrs.get("synthetic", False))
    fit_part, validation = split_history(history, options.validation_fraction)
    x_val, y_val = features_and_label(validation)
    x_test, y_test = features_and_label(test)
    params = options.family_params
    rows = fit_rows(fit_part, extra_fit)
    model, threshold, val_scores = fit_with_threshold(rows, validation, options, on_trees)
    test_scores = model.predict_proba(x_test)[:, 1]
    metrics = evaluate_slices(
        {"validation": (x_val, y_val, val_scores), "test": (x_test, y_test, test_scores)},
        threshold,
        CostModel(options.review_fee),
    )

    # Each node's cover (its share of the fit rows) rides in the ONNX file for explanations;
    # its `label` output is the served decision at this version's threshold.
    onnx_bytes = with_decision(with_cover(export_onnx(model), rows.x, rows.weights), threshold)
    parity_gap = check_parity(onnx_bytes, model, x_val)
    reference = build_reference(x_val, FEATURES, val_scores, threshold)
    calibration_map, calibration_summary = calibrate(onnx_bytes, (x_val, y_val), (x_test, y_test))

    manifest: dict[str, Any] = {
        "model_name": model_name,
        "algorithm": FAMILIES[options.algorithm].estimator,
        "family": options.algorithm,
        "params": params,
        "threshold": threshold,
        "threshold_rule": options.threshold_rule,
        "features": list(FEATURES),
        "model_features": list(options.model_features),
        "metrics": metrics,
        "bootstrap": bootstrap.settings(),
        "data": {
            **dataset_fingerprint(data),
            "source": source,
            "synthetic": synthetic,
            "history_fraction": options.history_fraction,
            "train_rows": len(fit_part) + (len(extra_fit.rows) if extra_fit else 0),
            "validation_rows": len(validation),
            "test_rows": len(test),
            "train_time_range": [float(fit_part["Time"].min()), float(fit_part["Time"].max())],
            "test_time_range": [float(test["Time"].min()), float(test["Time"].max())],
        },
        "onnx": {
            "input": "input",
            "output": "probabilities",
            "dtype": "float32",
            "label": DECISION_RULE,
        },
        "onnx_parity_max_abs_diff": parity_gap,
        "calibration": calibration_summary,
        "explanations": {
            "method": "path-dependent TreeSHAP over the ONNX trees",
            "cover": "ONNX nodes_hitrates: each node's share of the fit rows",
        },
        "code_revision": code_revision(options.commit),
        "library_versions": library_versions(),
    }
    manifest["training_seconds"] = round(time.perf_counter() - started, 2)

    joblib_buf = io.BytesIO()
    joblib.dump(model, joblib_buf, compress=3)
    files = {
        "model.onnx": onnx_bytes,
        "model.joblib": joblib_buf.getvalue(),
        "reference.json": json.dumps(reference, indent=1).encode(),
        CALIBRATION_FILE: calibration_map,
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


def train_best_family(
    df: pd.DataFrame,
    options: TrainingOptions,
    *,
    source: str,
    model_name: str,
    on_trees: TreeCallback | None = None,
    extra_fit: WeightedRows | None = None,
) -> tuple[TrainedModel, str]:
    """Train every family with its defaults; keep the one with the best validation PR-AUC.

    Validation is the later part of history: the choice never sees the test (holdout) rows.
    Returns the kept model and why, in words.
    """
    runs = {
        algorithm: train(
            df,
            replace(options, algorithm=algorithm, params=None),
            source=source,
            model_name=model_name,
            on_trees=on_trees,
            extra_fit=extra_fit,
        )
        for algorithm in ALGORITHMS
    }

    def validation_pr_auc(algorithm: Algorithm) -> float:
        return float(runs[algorithm].manifest["metrics"]["validation"]["pr_auc"])

    best = max(ALGORITHMS, key=validation_pr_auc)
    scores = ", ".join(
        f"{a} "
        + bootstrap.with_interval(
            validation_pr_auc(a), runs[a].manifest["metrics"]["validation_ci"].get("pr_auc")
        )
        for a in ALGORITHMS
    )
    why = (
        f"family `{best}` kept by --algorithm auto: highest validation PR-AUC on history "
        f"(the holdout is not used to choose): {scores}"
    )
    return runs[best], why
