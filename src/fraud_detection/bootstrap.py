"""Bootstrap distributions of the quality metrics: intervals beside every figure, paired gains.

A resample draws the frauds and the legitimate rows separately with replacement (stratified
by class), so every resample holds the slice's number of frauds and no resample is without
them. A resample is row weights (how often each row was drawn), and every metric here is a
weighted cumulative sum over the rows sorted by score.

Legitimate rows are interchangeable between two neighbouring frauds: every metric depends
only on how many were drawn there (on each side of the threshold). So they are pooled into
such cells, and a cell's draw count is taken from the multinomial over cells, exactly the
distribution of the sum of its rows' counts. A resample then costs the number of frauds,
not the number of rows. Cells are joint over the models compared, so a paired comparison
scores both models on the very same resampled rows.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

RESAMPLES = 1000
LEVEL = 0.95
SEED = 0
ALERT_BUDGET = 20.0
"""Alerts per 10,000 transactions a fraud team reviews; about 1.5x the data's fraud rate."""
PRECISION_TARGET = 0.85
"""The precision the published time-ordered result on this data reports its recall at."""

BOOTSTRAPPED = (  # every metric with an interval, in the order reports show them
    "pr_auc",
    "roc_auc",
    "precision",
    "recall",
    "f1",
    "fpr",
    "fnr",
    "recall_at_budget",
    "recall_at_precision",
    "expected_cost",
)
_CELLS_PER_CHUNK = 4_000_000  # resamples x pooled items held at once: about 32 MB


def settings(resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED) -> dict[str, Any]:
    """How the intervals were made, for the manifest and the reports."""
    return {"resamples": resamples, "level": level, "seed": seed, "stratified": "by class"}


@dataclass(frozen=True)
class _Pooled:
    """One model's view of a slice: the frauds one by one, then its cells of legitimate rows."""

    y: NDArray[np.bool_]
    scores: NDArray[np.float64]
    amounts: NDArray[np.float64]
    cell_to_segment: NDArray[np.float64]  # [joint cells, this model's cells] indicator


def _segments(
    scores: NDArray[np.float64], frauds: NDArray[np.float64], threshold: float
) -> NDArray[np.int64]:
    """For each legitimate row's score: a key shared exactly by the rows it is pooled with."""
    ascending = np.sort(frauds)
    right = np.searchsorted(ascending, scores, side="right")
    tied = right > np.searchsorted(ascending, scores, side="left")
    above = len(frauds) - right
    return (above * 4 + tied * 2 + (scores >= threshold)).astype(np.int64)


def pool(
    y: NDArray[Any],
    models: Sequence[tuple[NDArray[Any], float]],
    amounts: NDArray[Any] | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], list[_Pooled]]:
    """Fraud rows, the joint cell of each legitimate row, and each model's pooled view."""
    y = np.asarray(y).astype(bool)
    frauds, legit = np.flatnonzero(y), np.flatnonzero(~y)
    amt = np.zeros(len(y)) if amounts is None else np.asarray(amounts, dtype=np.float64)
    keys = []
    for scores, threshold in models:
        s = np.asarray(scores, dtype=np.float64)
        keys.append(np.unique(_segments(s[legit], s[frauds], threshold), return_inverse=True)[1])
    _, first, cells = np.unique(
        np.stack(keys, axis=1), axis=0, return_index=True, return_inverse=True
    )
    views = []
    for (scores, _), key in zip(models, keys, strict=True):
        s = np.asarray(scores, dtype=np.float64)
        top = np.full(key.max() + 1, -np.inf)
        np.maximum.at(top, key, s[legit])  # a cell's highest score orders it among the frauds
        indicator = np.zeros((len(first), len(top)))
        indicator[np.arange(len(first)), key[first]] = 1.0
        views.append(
            _Pooled(
                y=np.r_[np.ones(len(frauds), bool), np.zeros(len(top), bool)],
                scores=np.r_[s[frauds], top],
                amounts=np.r_[amt[frauds], np.zeros(len(top))],
                cell_to_segment=indicator,
            )
        )
    return frauds, cells.ravel(), views


def resample_weights(
    n_frauds: int, cell_sizes: NDArray[np.int64], resamples: int, seed: int
) -> Iterator[tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Draw counts of each fraud and of each cell, for chunks of stratified resamples."""
    rng = np.random.default_rng(seed)
    legit = int(cell_sizes.sum())
    chunk = max(1, _CELLS_PER_CHUNK // max(len(cell_sizes) + n_frauds, 1))
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        frauds = rng.multinomial(n_frauds, np.full(n_frauds, 1 / n_frauds), size=k)
        cells = rng.multinomial(legit, cell_sizes / legit, size=k)
        yield frauds.astype(np.float64), cells.astype(np.float64)


def stratified_rows(
    y: NDArray[Any], resamples: int = RESAMPLES, seed: int = SEED
) -> Iterator[NDArray[np.int32]]:
    """Row indices of stratified resamples ([k, rows] per chunk): the frauds and the
    legitimate rows each drawn with replacement to their own count, for metrics of every row
    (a Brier score) that the pooled cells above cannot give."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y).astype(bool)
    # 32-bit indices draw four times faster than 64-bit ones.
    frauds, legit = np.flatnonzero(y).astype(np.int32), np.flatnonzero(~y).astype(np.int32)
    chunk = max(1, _CELLS_PER_CHUNK // max(len(y), 1))
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        yield np.concatenate(
            [
                frauds[rng.integers(0, len(frauds), (k, len(frauds)), dtype=np.int32)],
                legit[rng.integers(0, len(legit), (k, len(legit)), dtype=np.int32)],
            ],
            axis=1,
        )


def weighted_metrics(
    weights: NDArray[np.float64],
    y: NDArray[Any],
    scores: NDArray[Any],
    threshold: float,
    *,
    alert_budget: float = ALERT_BUDGET,
    precision_target: float = PRECISION_TARGET,
    amounts: NDArray[Any] | None = None,
    review_fee: float = 5.0,
) -> dict[str, NDArray[np.float64]]:
    """Each metric for each row of `weights` ([k, rows]); ties in score share one threshold."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="stable")
    w, yy = weights[:, order], y[order]
    ends = np.flatnonzero(np.r_[s[order][1:] != s[order][:-1], True])
    tp = np.cumsum(w * yy, axis=1)[:, ends]
    fp = np.cumsum(w * ~yy, axis=1)[:, ends]
    positives, negatives = tp[:, -1:], fp[:, -1:]
    tp_before = np.c_[np.zeros(len(w)), tp[:, :-1]]
    fp_before = np.c_[np.zeros(len(w)), fp[:, :-1]]
    precision_curve = tp / np.maximum(tp + fp, 1e-12)
    pr_auc = ((tp - tp_before) * precision_curve).sum(axis=1) / positives[:, 0]
    roc_auc = ((fp - fp_before) * (tp + tp_before) / 2).sum(axis=1) / (
        positives[:, 0] * negatives[:, 0]
    )
    # Recall at a budget: the highest-scored rows until the budget's share of rows is spent.
    budget = alert_budget / 10_000 * w.sum(axis=1, keepdims=True)
    recall_at_budget = np.where(tp + fp <= budget, tp, 0.0).max(axis=1) / positives[:, 0]
    # The PR curve's best recall among thresholds keeping precision at the target.
    reached = precision_curve >= precision_target
    recall_at_precision = np.where(reached, tp, 0.0).max(axis=1) / positives[:, 0]

    flagged = s >= threshold
    hit = weights @ (y & flagged)
    alarm = weights @ (~y & flagged)
    missed = weights @ (y & ~flagged)
    quiet = weights @ (~y & ~flagged)
    out = {
        "pr_auc": pr_auc,
        "roc_auc": roc_auc,
        "precision": _ratio(hit, hit + alarm),
        "recall": _ratio(hit, hit + missed),
        "f1": _ratio(2 * hit, 2 * hit + alarm + missed),
        "fpr": _ratio(alarm, alarm + quiet),
        "fnr": _ratio(missed, missed + hit),
        "recall_at_budget": recall_at_budget,
        "recall_at_precision": recall_at_precision,
    }
    if amounts is not None:
        lost = np.where(y & ~flagged, np.asarray(amounts, dtype=np.float64), 0.0)
        out["expected_cost"] = weights @ lost + review_fee * alarm
    return out


def _ratio(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def distributions(
    y: NDArray[Any],
    models: Sequence[tuple[NDArray[Any], float]],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    amounts: NDArray[Any] | None = None,
    **options: Any,
) -> list[dict[str, NDArray[np.float64]]]:
    """Each metric of each model ((scores, threshold)) over the same stratified resamples."""
    frauds, cells, views = pool(y, models, amounts)
    sizes = np.bincount(cells)
    parts: list[list[dict[str, NDArray[np.float64]]]] = [[] for _ in models]
    for fraud_w, cell_w in resample_weights(len(frauds), sizes, resamples, seed):
        for view, (_, threshold), out in zip(views, models, parts, strict=True):
            weights = np.c_[fraud_w, cell_w @ view.cell_to_segment]
            out.append(
                weighted_metrics(
                    weights,
                    view.y,
                    view.scores,
                    threshold,
                    amounts=None if amounts is None else view.amounts,
                    **options,
                )
            )
    return [{key: np.concatenate([p[key] for p in out]) for key in out[0]} for out in parts]


def distribution(
    y: NDArray[Any], scores: NDArray[Any], threshold: float, **options: Any
) -> dict[str, NDArray[np.float64]]:
    """Each metric of one model over stratified resamples; the same seed gives the same rows."""
    return distributions(y, [(scores, threshold)], **options)[0]


def interval(values: NDArray[np.float64], level: float = LEVEL) -> list[float]:
    """The central `level` percentile interval [low, high]."""
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return [float(low), float(high)]


def metric_intervals(
    y: NDArray[Any],
    scores: NDArray[Any],
    threshold: float,
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = SEED,
    **options: Any,
) -> dict[str, list[float]]:
    """A bootstrap `level` interval for each metric; none when the slice lacks a class."""
    y = np.asarray(y)
    if not 0 < y.sum() < len(y):
        return {}
    dist = distribution(y, scores, threshold, resamples=resamples, seed=seed, **options)
    return {key: interval(values, level) for key, values in dist.items()}


def _unweighted(y: NDArray[Any], scores: NDArray[Any], key: str, **options: Any) -> float:
    """One threshold-free metric of the rows as they are; NaN without frauds."""
    y = np.asarray(y)
    if not y.any():
        return float("nan")
    return float(weighted_metrics(np.ones((1, len(y))), y, scores, 1.0, **options)[key][0])


def recall_at_alert_budget(y: NDArray[Any], scores: NDArray[Any], alert_budget: float) -> float:
    """Share of frauds among the top `alert_budget` per 10,000 rows by score."""
    return _unweighted(y, scores, "recall_at_budget", alert_budget=alert_budget)


def recall_at_precision(
    y: NDArray[Any], scores: NDArray[Any], precision_target: float = PRECISION_TARGET
) -> float:
    """The best recall on the precision-recall curve whose precision is at least the target."""
    return _unweighted(y, scores, "recall_at_precision", precision_target=precision_target)


def confusion_intervals(
    tn: int, fp: int, fn: int, tp: int, *, resamples: int = RESAMPLES, seed: int = SEED
) -> dict[str, list[float]]:
    """Intervals of precision, recall and F1 from confusion counts alone: the class-stratified
    bootstrap of the labelled rows, drawn as binomials (the frauds caught among the labelled
    frauds, the false alarms among the labelled legitimate rows). Empty without both classes."""
    frauds, legit = tp + fn, tn + fp
    if not frauds or not legit:
        return {}
    rng = np.random.default_rng(seed)
    caught = rng.binomial(frauds, tp / frauds, resamples).astype(np.float64)
    alarms = rng.binomial(legit, fp / legit, resamples).astype(np.float64)
    precision = _ratio(caught, caught + alarms)
    recall = caught / frauds
    f1 = _ratio(2 * caught, 2 * caught + alarms + (frauds - caught))
    return {
        name: interval(values)
        for name, values in (("precision", precision), ("recall", recall), ("f1", f1))
    }


def with_interval(value: float | None, bounds: list[float] | None, digits: int = 4) -> str:
    """`0.8043 [0.7180, 0.8810]`: a figure as every output prints it, interval beside."""
    if value is None:
        return "-"
    text = f"{value:,.2f}" if abs(value) >= 100 else f"{value:.{digits}f}"
    if not bounds:
        return text
    low, high = bounds
    if abs(value) >= 100:
        return f"{text} [{low:,.2f}, {high:,.2f}]"
    return f"{text} [{low:.{digits}f}, {high:.{digits}f}]"
