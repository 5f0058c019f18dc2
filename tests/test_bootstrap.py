"""Bootstrap metrics: the weighted sweep equals scikit-learn, resamples keep the class counts,
and the same seed gives the same interval."""

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    precision_recall_curve,
    roc_auc_score,
)

from fraud_detection.bootstrap import (
    confusion_intervals,
    distribution,
    metric_intervals,
    pool,
    recall_at_alert_budget,
    recall_at_precision,
    resample_weights,
    weighted_metrics,
    with_interval,
)


def _slice(seed: int = 0, rows: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.02).astype(np.int8)
    # Rounded scores create ties, as forest probabilities do.
    scores = np.round(np.clip(rng.normal(0.2 + 0.5 * y, 0.2), 0, 1), 2)
    return y, scores


def test_weighted_sweep_equals_scikit_learn_with_sample_weights() -> None:
    y, s = _slice()
    w = np.random.default_rng(1).integers(0, 3, size=(2, len(y))).astype(float)
    stats = weighted_metrics(w, y, s, 0.5)
    for i in range(2):
        assert stats["pr_auc"][i] == pytest.approx(
            average_precision_score(y, s, sample_weight=w[i])
        )
        assert stats["roc_auc"][i] == pytest.approx(roc_auc_score(y, s, sample_weight=w[i]))
        assert stats["f1"][i] == pytest.approx(f1_score(y, s >= 0.5, sample_weight=w[i]))


def test_pooled_legitimate_rows_give_the_same_metrics_as_row_weights() -> None:
    y, s = _slice()
    other = np.round(np.random.default_rng(2).random(len(y)), 2)
    amounts = np.random.default_rng(4).random(len(y)) * 100
    row_weights = np.random.default_rng(3).integers(0, 3, size=len(y)).astype(float)
    frauds, cells, views = pool(y, [(s, 0.5), (other, 0.3)], amounts)
    legit = np.flatnonzero(y == 0)
    cell_weights = np.bincount(cells, weights=row_weights[legit])
    for view, (scores, threshold) in zip(views, [(s, 0.5), (other, 0.3)], strict=True):
        pooled = np.r_[row_weights[frauds], cell_weights @ view.cell_to_segment][None, :]
        got = weighted_metrics(pooled, view.y, view.scores, threshold, amounts=view.amounts)
        want = weighted_metrics(row_weights[None, :], y, scores, threshold, amounts=amounts)
        for key, value in want.items():
            assert got[key] == pytest.approx(value), key


def test_every_resample_keeps_the_number_of_frauds_and_rows() -> None:
    sizes = np.array([500, 3, 4000, 1])
    for frauds, cells in resample_weights(20, sizes, 50, seed=3):
        assert (frauds.sum(axis=1) == 20).all()
        assert (cells.sum(axis=1) == sizes.sum()).all()


def test_same_seed_same_interval_and_the_point_estimate_lies_inside() -> None:
    y, s = _slice()
    first = metric_intervals(y, s, 0.5, resamples=200, seed=7)
    assert first == metric_intervals(y, s, 0.5, resamples=200, seed=7)
    assert first != metric_intervals(y, s, 0.5, resamples=200, seed=8)
    low, high = first["pr_auc"]
    assert low < average_precision_score(y, s) < high


def test_paired_resamples_of_one_model_give_a_zero_gain() -> None:
    y, s = _slice()
    a = distribution(y, s, 0.5, resamples=100, seed=1)
    b = distribution(y, s, 0.5, resamples=100, seed=1)
    assert (b["f1"] - a["f1"] == 0).all()


def test_recall_at_budget_counts_frauds_in_the_top_alerts() -> None:
    y = np.zeros(10_000, dtype=np.int8)
    y[:4] = 1
    scores = np.linspace(1, 0, 10_000)  # frauds are the 4 highest scores
    scores[3] = 0.0  # ... but one fraud scores lowest
    assert recall_at_alert_budget(y, scores, alert_budget=20) == pytest.approx(0.75)
    assert recall_at_alert_budget(y, scores, alert_budget=2) == pytest.approx(0.5)


@pytest.mark.parametrize("target", [0.3, 0.5, 0.85])
def test_recall_at_precision_is_the_best_recall_on_the_pr_curve(target: float) -> None:
    y, s = _slice()
    w = np.random.default_rng(5).integers(0, 3, size=(3, len(y))).astype(float)
    got = weighted_metrics(w, y, s, 0.5, precision_target=target)["recall_at_precision"]
    for i in range(3):
        precision, recall, _ = precision_recall_curve(y, s, sample_weight=w[i])
        assert got[i] == pytest.approx(recall[precision >= target].max())
    assert recall_at_precision(y, s, target) == pytest.approx(
        precision_recall_curve(y, s)[1][precision_recall_curve(y, s)[0] >= target].max()
    )


def test_a_slice_without_frauds_has_no_interval() -> None:
    assert metric_intervals(np.zeros(100), np.zeros(100), 0.5) == {}


def test_figures_print_with_their_interval() -> None:
    assert with_interval(0.80431, [0.718, 0.881]) == "0.8043 [0.7180, 0.8810]"
    assert with_interval(0.8, None) == "0.8000"


def test_intervals_from_confusion_counts_match_the_row_bootstrap() -> None:
    # 60 labelled frauds (45 caught) and 5,000 legitimate rows (30 false alarms).
    y = np.r_[np.ones(60), np.zeros(5000)].astype(int)
    flagged = np.r_[np.ones(45), np.zeros(15), np.ones(30), np.zeros(4970)]
    from_rows = metric_intervals(y, flagged, 0.5)
    from_counts = confusion_intervals(tn=4970, fp=30, fn=15, tp=45)
    for key in ("precision", "recall", "f1"):
        assert from_counts[key] == pytest.approx(from_rows[key], abs=0.03), key
        assert from_counts[key][0] < from_counts[key][1]
    assert from_counts["recall"][0] < 0.75 < from_counts["recall"][1]
    assert confusion_intervals(tn=10, fp=0, fn=0, tp=0) == {}
