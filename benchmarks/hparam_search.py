"""Hyperparameter search on history only (first 80% by time), time-series cross-validation.

Three expanding-window folds: each validates on the next 15% of history after the rows it
was fitted on. The test slice (last 20% by time) is never read. This is where
training.DEFAULT_PARAMS comes from. Usage: python benchmarks/hparam_search.py [--data PATH]
"""

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from fraud_detection.data import load_dataset, time_split
from fraud_detection.schema import FEATURES
from fraud_detection.training import DEFAULT_PARAMS, MODEL_FEATURES, features_and_label, fit_model
from results import write_section

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "creditcard.csv.gz"
PLAIN = {"n_estimators": 100, "random_state": 42}
FAST = {"n_estimators": 100, "max_samples": 0.3, "random_state": 42}
BAL = {**FAST, "class_weight": "balanced_subsample"}
GRID: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    (PLAIN, FEATURES),
    (PLAIN, MODEL_FEATURES),
    (FAST, MODEL_FEATURES),
    ({**FAST, "min_samples_leaf": 3}, MODEL_FEATURES),
    ({**FAST, "criterion": "entropy"}, MODEL_FEATURES),
    ({**FAST, "max_depth": 12}, MODEL_FEATURES),
    ({**BAL, "min_samples_leaf": 5}, MODEL_FEATURES),
    (DEFAULT_PARAMS, MODEL_FEATURES),
    ({**BAL, "min_samples_leaf": 20}, MODEL_FEATURES),
    ({**BAL, "min_samples_leaf": 40}, MODEL_FEATURES),
    ({**BAL, "min_samples_leaf": 10, "max_features": "log2"}, MODEL_FEATURES),
    ({**BAL, "min_samples_leaf": 10, "max_samples": 0.6}, MODEL_FEATURES),
    ({**BAL, "min_samples_leaf": 10, "class_weight": "balanced"}, MODEL_FEATURES),
    ({**BAL, "min_samples_leaf": 10, "n_estimators": 300}, MODEL_FEATURES),
]


def folds(n: int, k: int = 3, fraction: float = 0.15) -> list[tuple[slice, slice]]:
    """Expanding-window (fit, validate) row ranges over the last k*fraction of history."""
    size = int(n * fraction)
    return [
        (slice(0, n - size * (k - i)), slice(n - size * (k - i), n - size * (k - i - 1)))
        for i in range(k)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    history, _ = time_split(load_dataset(str(args.data)))
    x, y = features_and_label(history)
    rows = []
    for params, features in GRID:
        started = time.perf_counter()
        scores = []
        for fit, val in folds(len(history)):
            model = fit_model(x[fit], y[fit], params, features)
            scores.append(average_precision_score(y[val], model.predict_proba(x[val])[:, 1]))
        seconds = (time.perf_counter() - started) / len(scores)
        shown = {k: v for k, v in params.items() if k != "random_state"}
        label = f"`{shown}`" + (" + Time" if "Time" in features else "")
        if params == DEFAULT_PARAMS and features == MODEL_FEATURES:
            label = f"**{label} (production default)**"
        rows.append((float(np.mean(scores)), label, scores, seconds))
        print(f"{np.mean(scores):.4f} {label} {np.round(scores, 3)} {seconds:.0f}s/fit", flush=True)
    rows.sort(key=lambda r: -r[0])
    table = [
        "Validation PR-AUC per fold (history only; folds end at 70%, 85%, 100% of history).",
        "",
        "| mean PR-AUC | configuration | folds | s per fit |",
        "|---:|---|---|---:|",
        *(
            f"| {m:.4f} | {label} | {', '.join(f'{s:.3f}' for s in sc)} | {sec:.0f} |"
            for m, label, sc, sec in rows
        ),
        "",
        "Fold-to-fold spread (about 0.15) dwarfs the differences between the better rows "
        "(about 0.01): with ~60 frauds per fold, the balanced-subsample forests with leaves of "
        "5 to 20 rows are tied, and seeds alone move them by about 0.01 (an earlier exploratory "
        "run with another seed put min_samples_leaf 10 first). All of them beat the plain "
        "forest, with or without Time, and fit 6x faster.",
    ]
    write_section(
        "Hyperparameter search (history only)",
        "python benchmarks/hparam_search.py",
        "\n".join(table),
    )


if __name__ == "__main__":
    main()
