"""How often each promotion gate promotes a challenger that differs from the champion only in
its seed, and how often it promotes a truly better one, on the real data.

Forests differing only in `random_state` are trained as `fraud retrain` trains (history =
all but the last 10% by time, threshold by max F1 on the last 20% of history) and every
ordered pair is judged on the retraining holdout. A weak champion (four features only)
stands in for a model a better challenger should replace.
Usage: nice -n 10 python benchmarks/gate_bench.py [--data PATH] [--seeds 8]
"""

import argparse
import itertools
from pathlib import Path
from typing import Any

import numpy as np

from fraud_detection.data import load_dataset, time_split
from fraud_detection.evaluation import classification_metrics
from fraud_detection.gate import paired_gain
from fraud_detection.retraining import PromotionRule, decide
from fraud_detection.training import (
    DEFAULT_PARAMS,
    TrainingOptions,
    features_and_label,
    fit_rows,
    fit_with_threshold,
    split_history,
)
from results import write_section

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "creditcard.csv.gz"
HOLDOUT = 0.1
LEVELS = (0.9, 0.95, 0.99)
WEAK = ("V1", "V2", "V5", "Amount")


def scored(history: Any, x_hold: np.ndarray, options: TrainingOptions) -> tuple[np.ndarray, float]:
    fit_part, validation = split_history(history, options.validation_fraction)
    model, threshold, _ = fit_with_threshold(fit_rows(fit_part, None), validation, options)
    return model.predict_proba(x_hold)[:, 1], threshold


def gates(y: np.ndarray, old: tuple[np.ndarray, float], new: tuple[np.ndarray, float]) -> dict:
    """Which gates promote `new` over `old`."""
    metrics = [classification_metrics(y, s, t) for s, t in (old, new)]
    rule = decide(*metrics, PromotionRule(paired_bootstrap=False)).action == "promote"
    out = {"SPEC rule alone (F1 + 0.02)": rule}
    for metric in ("pr_auc", "f1"):
        for level in LEVELS:
            gain = paired_gain(y, old, new, metric=metric, min_confidence=level)
            out[f"rule + paired {metric} lower bound > 0 at {level:.0%}"] = rule and gain.believed
            out[f"paired {metric} lower bound > 0 at {level:.0%} (alone)"] = gain.believed
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--n-jobs", type=int, default=1)
    args = parser.parse_args()
    history, holdout = time_split(load_dataset(str(args.data)), 1 - HOLDOUT)
    x_hold, y_hold = features_and_label(holdout)
    runs = []
    for seed in range(args.seeds):
        options = TrainingOptions(
            params={**DEFAULT_PARAMS, "random_state": seed}, n_jobs=args.n_jobs
        )
        runs.append(scored(history, x_hold, options))
        print("seed", seed, flush=True)
    weak = scored(history, x_hold, TrainingOptions(model_features=WEAK, n_jobs=args.n_jobs))
    pairs = [
        gates(y_hold, runs[a], runs[b]) for a, b in itertools.permutations(range(len(runs)), 2)
    ]
    better = [gates(y_hold, weak, run) for run in runs]
    lines = [
        f"{args.seeds} RandomForests (production defaults) differing only in `random_state`, "
        f"trained as `fraud retrain` does; every ordered pair ({len(pairs)}) judged on the "
        f"retraining holdout (last 10% by time: {len(y_hold):,} rows, {int(y_hold.sum())} "
        f"frauds). The better challengers: each of the {len(runs)} forests against a weak "
        f"champion that sees only {', '.join(WEAK)}.",
        "",
        "| gate | seed pairs promoted (should be 0) | better challengers promoted |",
        "|---|---:|---:|",
    ]
    for name in pairs[0]:
        promoted = sum(p[name] for p in pairs)
        caught = sum(b[name] for b in better)
        lines.append(
            f"| {name} | {promoted}/{len(pairs)} ({promoted / len(pairs):.0%}) | "
            f"{caught}/{len(better)} |"
        )
    write_section(
        "Promotion gate on seed pairs (real data)",
        f"nice -n 10 python benchmarks/gate_bench.py --seeds {args.seeds}",
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()
