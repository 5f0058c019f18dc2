"""Metrics, threshold choice and expected cost: pure functions over labels and scores."""

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from .bootstrap import ALERT_BUDGET, PRECISION_TARGET, recall_at_alert_budget, recall_at_precision

ThresholdRule = Literal["f1", "min_precision", "cost"]

DEFAULT_REVIEW_FEE = 5.0
"""What one false alarm costs (an analyst's review), in the currency of `Amount`."""


@dataclass(frozen=True)
class CostModel:
    """A missed fraud costs its `Amount`; a false alarm costs a fixed review fee."""

    review_fee: float = DEFAULT_REVIEW_FEE

    def cost(self, y_true: NDArray[Any], flagged: NDArray[Any], amounts: NDArray[Any]) -> float:
        """Total cost of the decisions `flagged` on labelled transactions."""
        missed = (y_true == 1) & ~flagged
        false_alarms = (y_true == 0) & flagged
        return float(amounts[missed].sum() + self.review_fee * false_alarms.sum())


def _sweep(
    y: NDArray[Any], scores: NDArray[Any], amounts: NDArray[Any] | None
) -> tuple[NDArray[np.float64], NDArray[Any], NDArray[Any], NDArray[Any]]:
    """Every useful threshold with the (tp, fp, flagged fraud amount) it yields, in one sort.

    Thresholds are midpoints between neighbouring distinct scores: forest probabilities sit
    on a grid, and a threshold equal to a grid value could flip decisions between float32
    (ONNX) and float64 (scikit-learn) scores.
    """
    order = np.argsort(-scores, kind="stable")
    s, yy = scores[order], y[order]
    amt = amounts[order] if amounts is not None else np.zeros(len(s))
    last_of_group = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    tp = np.cumsum(yy == 1)[last_of_group]
    fp = np.cumsum(yy == 0)[last_of_group]
    caught = np.cumsum(np.where(yy == 1, amt, 0.0))[last_of_group]
    distinct = s[last_of_group]
    below = np.r_[distinct[1:], distinct[-1] - 1.0]
    return (distinct + below) / 2, tp, fp, caught


def choose_threshold(
    y_true: NDArray[Any],
    scores: NDArray[Any],
    rule: ThresholdRule = "f1",
    *,
    min_precision: float = 0.9,
    amounts: NDArray[Any] | None = None,
    cost_model: CostModel = CostModel(),
) -> float:
    """The decision threshold on `scores` that the rule prefers on these labelled rows."""
    y = np.asarray(y_true).astype(np.int8)
    s = np.asarray(scores, dtype=np.float64)
    if rule == "cost" and amounts is None:
        raise ValueError("the cost rule needs transaction amounts")
    amt = None if amounts is None else np.asarray(amounts, dtype=np.float64)
    thresholds, tp, fp, caught = _sweep(y, s, amt)
    positives = int((y == 1).sum())
    if rule == "f1":
        f1 = 2 * tp / np.maximum(tp + fp + positives, 1)
        return float(thresholds[int(np.argmax(f1))])
    if rule == "min_precision":
        precision = tp / np.maximum(tp + fp, 1)
        ok = precision >= min_precision
        if not ok.any():
            return float(thresholds[int(np.argmax(precision))])
        # Among thresholds meeting the precision floor, the lowest catches the most fraud.
        return float(thresholds[np.flatnonzero(ok)[-1]])
    assert amt is not None
    missed = amt[y == 1].sum() - caught
    return float(thresholds[int(np.argmin(missed + cost_model.review_fee * fp))])


def classification_metrics(
    y_true: NDArray[Any],
    scores: NDArray[Any],
    threshold: float,
    *,
    amounts: NDArray[Any] | None = None,
    cost_model: CostModel = CostModel(),
    slice_name: str = "test",
    alert_budget: float = ALERT_BUDGET,
) -> dict[str, Any]:
    """PR-AUC first (beside the slice's fraud rate), then thresholded metrics and cost, recall
    at a fixed alert budget (alerts per 10,000 transactions) and at a precision target."""
    y = np.asarray(y_true).astype(np.int8)
    s = np.asarray(scores, dtype=np.float64)
    flagged = s >= threshold
    cm = confusion(y == 1, flagged)
    both_classes = 0 < y.sum() < len(y)
    metrics: dict[str, Any] = {
        "pr_auc": float(average_precision_score(y, s)) if both_classes else float("nan"),
        f"{slice_name}_fraud_rate": float(y.mean()) if len(y) else float("nan"),
        "roc_auc": float(roc_auc_score(y, s)) if both_classes else float("nan"),
        **confusion_rates(cm, undefined=0.0),
        "recall_at_budget": recall_at_alert_budget(y, s, alert_budget),
        "alert_budget_per_10k": alert_budget,
        "recall_at_precision": recall_at_precision(y, s, PRECISION_TARGET),
        "precision_target": PRECISION_TARGET,
        "confusion_matrix": cm,
        "rows": len(y),
        "frauds": int(y.sum()),
    }
    if amounts is not None:
        amt = np.asarray(amounts, dtype=np.float64)
        metrics["expected_cost"] = cost_model.cost(y, flagged, amt)
        metrics["review_fee"] = cost_model.review_fee
    return metrics


def confusion(is_fraud: NDArray[np.bool_], flagged: NDArray[np.bool_]) -> dict[str, int]:
    """Confusion counts of decisions against the truth: tn, fp, fn, tp."""
    return {
        "tn": int((~flagged & ~is_fraud).sum()),
        "fp": int((flagged & ~is_fraud).sum()),
        "fn": int((~flagged & is_fraud).sum()),
        "tp": int((flagged & is_fraud).sum()),
    }


def confusion_rates(cm: dict[str, int], *, undefined: float | None) -> dict[str, float | None]:
    """Precision, recall, F1, FPR and FNR of confusion counts; `undefined` where a
    denominator is zero."""
    tp, fp, fn, tn = cm["tp"], cm["fp"], cm["fn"], cm["tn"]

    def rate(num: int, den: int) -> float | None:
        return num / den if den else undefined

    return {
        "precision": rate(tp, tp + fp),
        "recall": rate(tp, tp + fn),
        "f1": rate(2 * tp, 2 * tp + fp + fn),
        "fpr": rate(fp, fp + tn),
        "fnr": rate(fn, fn + tp),
    }


def pr_curve(y_true: NDArray[Any], scores: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    """Precision and recall arrays of the precision-recall curve, for plotting."""
    precision, recall, _ = precision_recall_curve(y_true, scores)
    return precision, recall
