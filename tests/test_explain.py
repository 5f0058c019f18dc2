"""Explanations: TreeSHAP over the ONNX trees equals exact Shapley values, adds up to the
served score for every family, agrees with XGBoost's own TreeSHAP, and names sensible
features for real frauds."""

from itertools import combinations
from math import factorial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost
from sklearn.pipeline import Pipeline

from fraud_detection.data import load_dataset
from fraud_detection.explain import build_explainer
from fraud_detection.export import export_onnx, onnx_fraud_probability, onnx_session
from fraud_detection.families import ALGORITHMS, Algorithm
from fraud_detection.schema import FEATURES, N_FEATURES
from fraud_detection.training import MODEL_FEATURES, features_and_label, fit_model
from fraud_detection.tree_arrays import (
    TreeArrays,
    UnsupportedModel,
    read_tree_arrays,
    route,
    with_cover,
    with_hitrates,
)

SMALL: dict[Algorithm, dict[str, Any]] = {
    "rf": {"n_estimators": 4, "max_depth": 4},
    "xgboost": {"n_estimators": 4, "max_depth": 3},
    "lightgbm": {"n_estimators": 4, "num_leaves": 8, "verbose": -1},
}
USED = [3, 7, 11, 14, 28]  # the only columns that vary, so a brute force stays small


def _fitted(algorithm: Algorithm, params: dict[str, Any]) -> tuple[Pipeline, np.ndarray]:
    rng = np.random.default_rng(0)
    x = np.zeros((2000, N_FEATURES))
    x[:, USED] = rng.normal(size=(2000, len(USED)))
    y = (x[:, 3] + x[:, 7] * x[:, 11] + rng.normal(size=2000) > 1).astype(int)
    model = fit_model(x, y, {**params, "random_state": 0}, MODEL_FEATURES, 1, algorithm=algorithm)
    return model, x


def _exported(algorithm: Algorithm, params: dict[str, Any]) -> tuple[bytes, np.ndarray]:
    model, x = _fitted(algorithm, params)
    return with_cover(export_onnx(model), x), x


def _expected_value(trees: TreeArrays, node: int, x: np.ndarray, known: set[int]) -> float:
    """E[f(x) | x_S] as path-dependent TreeSHAP defines it (Lundberg et al., Algorithm 1)."""
    if trees.mode[node] == 0:
        return float(trees.value[node])
    yes, no = int(trees.true_child[node]), int(trees.false_child[node])
    if int(trees.feature[node]) in known:
        row = x.astype(np.float32).astype(np.float64)
        go = route_one(trees, node, row)
        return _expected_value(trees, yes if go else no, x, known)
    cover = trees.cover[node]
    return float(
        trees.cover[yes] / cover * _expected_value(trees, yes, x, known)
        + trees.cover[no] / cover * _expected_value(trees, no, x, known)
    )


def route_one(trees: TreeArrays, node: int, row: np.ndarray) -> bool:
    value, t, mode = row[trees.feature[node]], trees.threshold[node], trees.mode[node]
    return bool({1: value <= t, 2: value < t, 3: value >= t, 4: value > t}[int(mode)])


def _brute_force(trees: TreeArrays, x: np.ndarray) -> np.ndarray:
    """Shapley values by enumerating every coalition of the columns the trees use."""
    players = sorted(set(trees.feature[trees.mode != 0].tolist()))
    n = len(players)

    def value(known: set[int]) -> float:
        return trees.base + sum(_expected_value(trees, int(r), x, known) for r in trees.roots)

    phi = np.zeros(N_FEATURES)
    for i in players:
        others = [p for p in players if p != i]
        for size in range(n):
            weight = factorial(size) * factorial(n - size - 1) / factorial(n)
            for coalition in combinations(others, size):
                known = set(coalition)
                phi[i] += weight * (value(known | {i}) - value(known))
    return phi


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_contributions_are_the_exact_shapley_values(algorithm: Algorithm) -> None:
    onnx_bytes, x = _exported(algorithm, SMALL[algorithm])
    trees = read_tree_arrays(onnx_bytes)
    explainer = build_explainer(onnx_bytes, list(FEATURES), x[:50])
    for row in x[:4]:
        expected = _brute_force(trees, row)
        assert np.allclose(explainer.contributions(row[None])[0], expected, atol=1e-9)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_contributions_add_up_to_the_served_score(algorithm: Algorithm) -> None:
    model, x = _fitted(algorithm, {})
    onnx_bytes = with_cover(export_onnx(model), x)
    explainer = build_explainer(onnx_bytes, list(FEATURES), x[:20])
    rows = x[-200:]
    total = explainer.expected_value + explainer.contributions(rows).sum(axis=1)
    if explainer.output == "log_odds":
        total = 1 / (1 + np.exp(-total))
    served = onnx_fraud_probability(onnx_session(onnx_bytes), rows)
    # onnxruntime sums in float32: the gap is its rounding, not the explanation's.
    assert np.allclose(total, served, atol=1e-6)
    unused = [j for j in range(N_FEATURES) if j not in USED]
    assert not explainer.contributions(rows)[:, unused].any()


def test_matches_xgboost_treeshap_with_its_cover() -> None:
    """Given XGBoost's own cover (its hessian sums), the values are XGBoost's pred_contribs."""
    model, x = _fitted("xgboost", {"n_estimators": 30, "max_depth": 4})
    onnx_bytes = export_onnx(model)
    booster = model.steps[-1][1].get_booster()
    table = booster.trees_to_dataframe()
    node = {(int(t), int(n)): (yes, no, cover) for t, n, yes, no, cover in
            table[["Tree", "Node", "Yes", "No", "Cover"]].itertuples(index=False)}  # fmt: skip
    trees = read_tree_arrays(onnx_bytes)
    hitrates = np.zeros(len(trees.mode))
    # onnxmltools numbers nodes depth first, XGBoost breadth first: walk both trees together.
    for tree, root in enumerate(trees.roots.tolist()):
        stack = [(root, 0)]
        while stack:
            ours, theirs = stack.pop()
            yes, no, hitrates[ours] = node[(tree, theirs)]
            if trees.mode[ours] != 0:
                stack.append((int(trees.true_child[ours]), int(yes.split("-")[1])))
                stack.append((int(trees.false_child[ours]), int(no.split("-")[1])))
    explainer = build_explainer(with_hitrates(onnx_bytes, hitrates), list(FEATURES), x[:20])
    columns = [FEATURES.index(f) for f in MODEL_FEATURES]
    rows = x[:100]
    theirs = booster.predict(xgboost.DMatrix(rows[:, columns]), pred_contribs=True)
    assert np.allclose(explainer.contributions(rows)[:, columns], theirs[:, :-1], atol=1e-4)
    assert np.allclose(explainer.expected_value, theirs[:, -1], atol=1e-4)


def test_a_model_without_cover_is_not_explained() -> None:
    model, x = _fitted("rf", SMALL["rf"])
    with pytest.raises(UnsupportedModel, match="cover"):
        build_explainer(export_onnx(model), list(FEATURES), x[:5])


def test_routing_scores_as_onnxruntime_and_counts_every_fit_row_once_per_tree() -> None:
    onnx_bytes, x = _exported("rf", SMALL["rf"])
    trees = read_tree_arrays(onnx_bytes)
    raw, counts = route(trees, x)
    assert np.allclose(raw, onnx_fraud_probability(onnx_session(onnx_bytes), x), atol=1e-6)
    assert np.allclose(counts[trees.roots], len(x))
    leaves = trees.mode == 0
    assert np.isclose(counts[leaves].sum(), len(x) * len(trees.roots))
    assert np.allclose(trees.cover[trees.roots], 1.0)


def test_real_frauds_are_explained_by_sensible_features(real_data: Path) -> None:
    df = load_dataset(str(real_data))
    cut = int(len(df) * 0.8)
    x, y = features_and_label(df.iloc[:cut])
    model = fit_model(
        x,
        y,
        {
            "n_estimators": 30,
            "min_samples_leaf": 10,
            "max_samples": 0.3,
            "class_weight": "balanced_subsample",
            "random_state": 0,
        },
        MODEL_FEATURES,
        algorithm="rf",
    )
    onnx_bytes = with_cover(export_onnx(model), x)
    explainer = build_explainer(onnx_bytes, list(FEATURES), x[:50])
    x_test, y_test = features_and_label(df.iloc[cut:])
    frauds = x_test[y_test == 1][:20]
    tops = [e["top_features"][0]["feature"] for e in explainer.explain(frauds, top=3)]
    sensible = {"V14", "V10", "V12", "V4", "V17", "V11", "V16", "V3"}
    assert sum(t in sensible for t in tops) >= 16, tops
