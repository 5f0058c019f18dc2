"""Hyperparameter search on history only (first 80% by time), time-series cross-validation.

Three expanding-window folds: each validates on the next 15% of history after the rows it
was fitted on. The test slice (last 20% by time) is never read by the search. This is where
training.DEFAULT_PARAMS comes from. Usage: python benchmarks/hparam_search.py [--data PATH]

With --families: a small grid per model family (each family's DEFAULTS, in
fraud_detection/families/, comes from here);
the best configuration of each family is then trained as `fraud train` does, in a fresh
process, and scored once on the test slice.
"""

import argparse
import multiprocessing
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from fraud_detection.data import load_dataset, time_split
from fraud_detection.families import ALGORITHMS, FAMILIES, Algorithm
from fraud_detection.inference import onnx_session
from fraud_detection.schema import FEATURES
from fraud_detection.training import (
    DEFAULT_PARAMS,
    MODEL_FEATURES,
    TrainingOptions,
    features_and_label,
    fit_model,
    train,
)
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


XGB = FAMILIES["xgboost"].params()
LGBM = FAMILIES["lightgbm"].params()
FAMILY_GRID: dict[Algorithm, list[dict[str, Any]]] = {
    "rf": [DEFAULT_PARAMS, {**DEFAULT_PARAMS, "min_samples_leaf": 5}],
    "xgboost": [XGB, {**XGB, "max_depth": 6, "learning_rate": 0.1, "n_estimators": 200}],
    "lightgbm": [LGBM, {**LGBM, "num_leaves": 15, "min_child_samples": 50}],
}


def cv_scores(
    x: np.ndarray, y: np.ndarray, algorithm: Algorithm, params: dict[str, Any], n_jobs: int
) -> tuple[list[float], float]:
    """Validation PR-AUC per time-ordered fold, and seconds per fit."""
    started = time.perf_counter()
    scores = []
    for fit, val in folds(len(x)):
        model = fit_model(x[fit], y[fit], params, MODEL_FEATURES, n_jobs, algorithm=algorithm)
        scores.append(float(average_precision_score(y[val], model.predict_proba(x[val])[:, 1])))
    return scores, (time.perf_counter() - started) / len(scores)


def train_once(
    data: str, algorithm: Algorithm, params: dict[str, Any], n_jobs: int
) -> dict[str, Any]:
    """`fraud train`'s pipeline in this (fresh) process: manifest, ONNX latency, peak RSS."""
    df = load_dataset(data)
    options = TrainingOptions(algorithm=algorithm, params=params, n_jobs=n_jobs)
    trained = train(df, options, source=data, model_name="bench")
    session = onnx_session(trained.files["model.onnx"], threads=1)
    row = features_and_label(df.tail(1))[0].astype(np.float32)
    for _ in range(200):
        session.run(None, {"input": row})
    timings = []
    for _ in range(2000):
        started = time.perf_counter()
        session.run(["probabilities"], {"input": row})
        timings.append(time.perf_counter() - started)
    return {
        "manifest": trained.manifest,
        "latency_us": float(np.median(timings) * 1e6),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _shown(params: dict[str, Any]) -> str:
    return str({k: v for k, v in params.items() if k not in ("random_state", "verbose")})


def families_main(data: str, n_jobs: int, grid: dict[Algorithm, list[dict[str, Any]]]) -> None:
    """Per family: CV on history, then its best trained and tested once. The section is
    rewritten after each family, so a long run leaves what it has measured."""
    history, _ = time_split(load_dataset(data))
    x, y = features_and_label(history)
    cv_rows: list[tuple[Algorithm, float, dict[str, Any], list[float], float]] = []
    best: dict[Algorithm, tuple[float, dict[str, Any], list[float]]] = {}
    finals: dict[Algorithm, dict[str, Any]] = {}
    spawn = multiprocessing.get_context("spawn")
    for algorithm, configurations in grid.items():
        for params in configurations:
            scores, seconds = cv_scores(x, y, algorithm, params, n_jobs)
            cv_rows.append((algorithm, float(np.mean(scores)), params, scores, seconds))
            print(
                f"{algorithm} {np.mean(scores):.4f} {np.round(scores, 3)} {_shown(params)}",
                flush=True,
            )
            if algorithm not in best or np.mean(scores) > best[algorithm][0]:
                best[algorithm] = (float(np.mean(scores)), params, scores)
        with spawn.Pool(1) as pool:  # a fresh process each: its peak RSS is this run's alone
            finals[algorithm] = pool.apply(
                train_once, (data, algorithm, best[algorithm][1], n_jobs)
            )
        print(algorithm, finals[algorithm]["manifest"]["metrics"]["test"]["pr_auc"], flush=True)
        write_section(
            "Model families (history-only CV, test once)",
            f"nice -n 10 python benchmarks/hparam_search.py --families --n-jobs {n_jobs}"
            + ("" if grid is FAMILY_GRID else " --defaults-only"),
            families_table(cv_rows, best, finals),
        )


def families_table(
    cv_rows: list[tuple[Algorithm, float, dict[str, Any], list[float], float]],
    best: dict[Algorithm, tuple[float, dict[str, Any], list[float]]],
    finals: dict[Algorithm, dict[str, Any]],
) -> str:
    """Markdown: the CV grid, then the final candidates on test with their intervals."""

    def ci(m: dict[str, Any], key: str) -> str:
        low, high = m["metrics"]["test_ci"][key]
        return f"{m['metrics']['test'][key]:.3f} [{low:.3f}, {high:.3f}]"

    lines = [
        "Validation PR-AUC per time-ordered fold on history only (folds end at 70%, 85%, 100% "
        "of history); the test slice is not read by the search.",
        "",
        "| family | mean CV PR-AUC | folds | configuration | s per fit |",
        "|---|---:|---|---|---:|",
        *(
            f"| {a} | {m:.4f} | {', '.join(f'{v:.3f}' for v in sc)} | `{_shown(p)}` | {sec:.0f} |"
            for a, m, p, sc, sec in cv_rows
        ),
        "",
        "Each family's best configuration, trained as `fraud train` does (fit on the first 80% "
        "of history, threshold by max F1 on the last 20% of history), scored once on the test "
        "slice (last 20% by time, 75 frauds). Intervals: 95% bootstrap, 1,000 resamples "
        "stratified by class. Train time is the whole pipeline (fit, threshold, test, "
        "bootstrap, ONNX export and parity) in a fresh process; peak memory is that process's "
        "RSS; latency is the median of 2,000 single-row onnxruntime calls on one thread. "
        "Seconds were measured on a 2-core host shared with other jobs (load varied during "
        "the run): they show magnitudes, not a ranking.",
        "",
        "| family | CV mean | test PR-AUC [95%] | ROC-AUC | precision | recall | F1 | "
        "recall at 20 alerts/10k | train s | peak MB | ONNX parity | 1-row latency µs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for algorithm, run in finals.items():
        m = run["manifest"]
        lines.append(
            f"| {algorithm} | {best[algorithm][0]:.4f} | {ci(m, 'pr_auc')} | "
            f"{ci(m, 'roc_auc')} | {ci(m, 'precision')} | {ci(m, 'recall')} | {ci(m, 'f1')} | "
            f"{ci(m, 'recall_at_budget')} | {m['training_seconds']:.0f} | "
            f"{run['peak_mb']:.0f} | {m['onnx_parity_max_abs_diff']:.1e} | "
            f"{run['latency_us']:.1f} |"
        )
    chosen = max(best, key=lambda a: best[a][0])
    lines += [
        "",
        f"Highest mean CV PR-AUC on history: **{chosen}** ({best[chosen][0]:.4f}). The choice "
        "is made on history only; the test rows above are reported, not used to choose.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--families", action="store_true", help="Compare the model families.")
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=1,
        help="Threads per fit with --families (OpenMP boosters crawl on an oversubscribed host).",
    )
    parser.add_argument(
        "--defaults-only",
        action="store_true",
        help="With --families: cross-validate each family's defaults only (a grid of one).",
    )
    args = parser.parse_args()
    if args.families:
        grid = (
            {a: [FAMILIES[a].params()] for a in ALGORITHMS} if args.defaults_only else FAMILY_GRID
        )
        families_main(str(args.data), args.n_jobs, grid)
        return
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
