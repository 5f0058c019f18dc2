"""Live quality of the served models on logged predictions joined with analysts' labels."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..bootstrap import confusion_intervals
from ..evaluation import confusion, confusion_rates


@dataclass(frozen=True)
class Tally:
    """The counts live metrics are made of: rows, flagged rows, and the confusion of the
    labelled ones (a window's worth of them fits in six integers)."""

    rows: int = 0
    flagged: int = 0
    tn: int = 0
    fp: int = 0
    fn: int = 0
    tp: int = 0

    def __add__(self, other: "Tally") -> "Tally":
        return Tally(
            self.rows + other.rows,
            self.flagged + other.flagged,
            self.tn + other.tn,
            self.fp + other.fp,
            self.fn + other.fn,
            self.tp + other.tp,
        )


def tally(window: pd.DataFrame) -> Tally:
    """The counts of a window of logged predictions (columns is_fraud and label)."""
    flagged_all = window["is_fraud"].to_numpy(dtype=bool)
    labelled = window["label"].notna().to_numpy()
    y = window["label"].to_numpy(dtype=np.float64)[labelled] == 1.0
    cm = confusion(y, flagged_all[labelled])
    return Tally(len(window), int(flagged_all.sum()), **cm)


def metrics_of(t: Tally) -> dict[str, Any]:
    """Precision, recall, F1, FPR, FNR and confusion on labelled rows; fraud rate on all rows.

    A ratio whose denominator is zero (no labels, no labelled frauds, nothing flagged) is None;
    `ci` holds 95% bootstrap intervals of precision, recall and F1.
    """
    cm = {"tn": t.tn, "fp": t.fp, "fn": t.fn, "tp": t.tp}
    return {
        "rows": t.rows,
        "labelled": t.tn + t.fp + t.fn + t.tp,
        "labelled_frauds": t.tp + t.fn,
        "flagged": t.flagged,
        "predicted_fraud_rate": t.flagged / t.rows if t.rows else None,
        # None rather than 0.0: "no labelled frauds" must not read as "recall 0".
        **confusion_rates(cm, undefined=None),
        "confusion_matrix": cm,
        "ci": confusion_intervals(t.tn, t.fp, t.fn, t.tp),
    }


def live_metrics(window: pd.DataFrame) -> dict[str, Any]:
    """`metrics_of` a window of logged predictions."""
    return metrics_of(tally(window))


def tally_variants(window: pd.DataFrame) -> dict[tuple[str, str], Tally]:
    """The counts per (variant, model version) of a window."""
    return {
        (str(variant), str(version)): tally(group)
        for (variant, version), group in window.groupby(["variant", "model_version"], sort=True)
    }


def metrics_by_variant(
    tallies: Mapping[tuple[str, str], Tally],
    settled: Mapping[tuple[str, str], Tally] | None = None,
) -> dict[str, dict[str, Any]]:
    """Live metrics per (variant, model version), in that order: champion against an A/B or
    shadow challenger on the transactions each scored. With `settled` (each one's mature
    window), the rates and confusion come from there; rows and labels from `tallies`."""
    out = {}
    for variant, version in sorted(tallies):
        m = metrics_of(tallies[variant, version])
        if settled is not None:
            m = with_rates_of(m, settled.get((variant, version), Tally()))
        out[f"{variant} v{version}"] = m
    return out


RATES = ("precision", "recall", "f1", "fpr", "fnr", "confusion_matrix", "ci")
"""What `metrics_of` derives from the confusion of labelled rows."""


def with_rates_of(m: Mapping[str, Any], settled: Tally) -> dict[str, Any]:
    """Metrics `m` with their rates and confusion taken from `settled` (the mature window's
    rows, whose classes are known) instead of the labels that happen to be in."""
    rates = metrics_of(settled)
    return {**m, **{name: rates[name] for name in RATES}}


def variant_metrics(window: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """`metrics_by_variant` of a window of logged predictions."""
    return metrics_by_variant(tally_variants(window))
