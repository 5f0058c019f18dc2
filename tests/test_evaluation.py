"""Threshold choice and metrics, checked against brute force on known data."""

import numpy as np
import pytest

from fraud_detection.evaluation import CostModel, choose_threshold, classification_metrics


@pytest.fixture
def scored() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    y = (rng.random(5000) < 0.02).astype(np.int8)
    scores = np.clip(0.45 * y + rng.random(5000) * 0.6, 0, 1).round(2)
    amounts = rng.exponential(80, 5000)
    return y, scores, amounts


def _all_thresholds(scores: np.ndarray) -> np.ndarray:
    return np.unique(scores)


def test_f1_threshold_is_the_best_f1_of_any_threshold(scored: tuple) -> None:
    y, scores, _ = scored
    chosen = choose_threshold(y, scores, "f1")
    best = max(classification_metrics(y, scores, t)["f1"] for t in _all_thresholds(scores))
    assert classification_metrics(y, scores, chosen)["f1"] == pytest.approx(best)


def test_threshold_sits_between_score_grid_points(scored: tuple) -> None:
    y, scores, _ = scored
    chosen = choose_threshold(y, scores, "f1")
    assert not np.isclose(scores, chosen, atol=1e-4).any()
    # float32 rounding of the scores (as ONNX returns them) decides every row the same way.
    assert ((scores >= chosen) == (scores.astype(np.float32) >= chosen)).all()


def test_cost_threshold_minimises_expected_cost(scored: tuple) -> None:
    y, scores, amounts = scored
    cost = CostModel(review_fee=3.0)
    chosen = choose_threshold(y, scores, "cost", amounts=amounts, cost_model=cost)
    best = min(
        classification_metrics(y, scores, t, amounts=amounts, cost_model=cost)["expected_cost"]
        for t in _all_thresholds(scores)
    )
    got = classification_metrics(y, scores, chosen, amounts=amounts, cost_model=cost)
    assert got["expected_cost"] == pytest.approx(best)


def test_min_precision_threshold_keeps_precision_and_maximises_recall(scored: tuple) -> None:
    y, scores, _ = scored
    chosen = choose_threshold(y, scores, "min_precision", min_precision=0.95)
    got = classification_metrics(y, scores, chosen)
    assert got["precision"] >= 0.95
    feasible = [
        m["recall"]
        for m in (classification_metrics(y, scores, t) for t in _all_thresholds(scores))
        if m["precision"] >= 0.95
    ]
    assert got["recall"] == pytest.approx(max(feasible))


def test_cost_rule_without_amounts_is_refused(scored: tuple) -> None:
    y, scores, _ = scored
    with pytest.raises(ValueError, match="amounts"):
        choose_threshold(y, scores, "cost")


def test_metrics_on_a_hand_counted_example() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.2, 0.7, 0.1, 0.1, 0.0, 0.3])
    amounts = np.array([100.0, 50.0, 40.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    m = classification_metrics(y, s, 0.5, amounts=amounts, cost_model=CostModel(5.0))
    assert m["confusion_matrix"] == {"tn": 4, "fp": 1, "fn": 1, "tp": 2}
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["fpr"] == pytest.approx(1 / 5)
    assert m["fnr"] == pytest.approx(1 / 3)
    assert m["test_fraud_rate"] == pytest.approx(3 / 8)
    assert m["expected_cost"] == pytest.approx(40.0 + 5.0)
    assert 0 < m["pr_auc"] <= 1
