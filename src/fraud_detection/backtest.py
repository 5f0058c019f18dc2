"""Rolling-origin backtest: re-train before each time fold, score the fold, show the spread."""

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from . import bootstrap
from .evaluation import CostModel
from .training import (
    TrainingOptions,
    evaluate_slices,
    features_and_label,
    fit_rows,
    fit_with_threshold,
    split_history,
)

SPREAD_KEYS = ("pr_auc", "roc_auc", "precision", "recall", "f1", "recall_at_budget")


def rolling_folds(rows: int, folds: int, fold_fraction: float) -> list[tuple[int, int]]:
    """(start, end) row ranges of the last `folds` slices of `fold_fraction` of the rows."""
    if not 0 < folds * fold_fraction < 1:
        raise ValueError("folds x fold fraction must leave rows to train on (between 0 and 1)")
    size = int(rows * fold_fraction)
    first = rows - size * folds
    return [(first + i * size, first + (i + 1) * size) for i in range(folds)]


def backtest(
    df: pd.DataFrame,
    options: TrainingOptions,
    *,
    folds: int = 4,
    fold_fraction: float = 0.05,
    on_fold: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Per fold: train on every earlier row (threshold on the last part of them), test on it."""
    ordered = df.sort_values("Time", kind="stable").reset_index(drop=True)
    times = ordered["Time"].to_numpy(dtype=np.float64)
    results = []
    for number, (start, end) in enumerate(rolling_folds(len(ordered), folds, fold_fraction), 1):
        fit_part, validation = split_history(ordered.iloc[:start], options.validation_fraction)
        model, threshold, _ = fit_with_threshold(fit_rows(fit_part, None), validation, options)
        x, y = features_and_label(ordered.iloc[start:end])
        metrics = evaluate_slices(
            {"test": (x, y, model.predict_proba(x)[:, 1])}, threshold, CostModel(options.review_fee)
        )
        fold = {
            "fold": number,
            "train_rows": start,
            "test_rows": end - start,
            "time_range": [float(times[start]), float(times[end - 1])],
            "threshold": threshold,
            "metrics": metrics["test"],
            "ci": metrics["test_ci"],
        }
        results.append(fold)
        if on_fold:
            on_fold(fold)
    return results


def spread(folds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean, standard deviation, min and max over folds of each headline metric."""
    out = {}
    for key in SPREAD_KEYS:
        values = np.array([f["metrics"][key] for f in folds], dtype=np.float64)
        out[key] = {
            "mean": float(np.nanmean(values)),
            "std": float(np.nanstd(values, ddof=1)) if len(values) > 1 else 0.0,
            "min": float(np.nanmin(values)),
            "max": float(np.nanmax(values)),
        }
    return out


def backtest_report(folds: list[dict[str, Any]], options: TrainingOptions) -> str:
    """Markdown: each fold with its intervals, then the spread over folds."""
    head = "| fold | train rows | test rows | frauds | " + " | ".join(SPREAD_KEYS) + " |"
    lines = [
        f"# Backtest: {options.algorithm}, {len(folds)} rolling time folds",
        "",
        "Each fold is scored by a model re-trained on every earlier row (threshold chosen on "
        "the last part of them). Intervals: 95% bootstrap, stratified by class.",
        "",
        head,
        "|---:|---:|---:|---:|" + "---:|" * len(SPREAD_KEYS),
    ]
    for f in folds:
        cells = [bootstrap.with_interval(f["metrics"][k], f["ci"].get(k), 3) for k in SPREAD_KEYS]
        lines.append(
            f"| {f['fold']} | {f['train_rows']:,} | {f['test_rows']:,} | "
            f"{f['metrics']['frauds']} | " + " | ".join(cells) + " |"
        )
    lines += ["", "| spread | mean | std | min | max |", "|---|---:|---:|---:|---:|"]
    for key, s in spread(folds).items():
        lines.append(
            f"| {key} | {s['mean']:.3f} | {s['std']:.3f} | {s['min']:.3f} | {s['max']:.3f} |"
        )
    return "\n".join(lines) + "\n"
