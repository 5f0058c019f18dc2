"""Per-prediction explanations: exact path-dependent TreeSHAP over the served ONNX trees.

Each leaf contributes a product game: with features S known, a leaf is reached with weight
prod(o_j for j in S) * prod(z_j for j not in S), where o_j says whether the row satisfies the
path's splits on feature j and z_j is the share of the fit rows that followed them (the cover).
Its Shapley values follow from the coefficients of prod(z_j + o_j t), computed for all leaves
at once with numpy (the formulation of GPUTreeShap and Linear TreeSHAP). The values sum, with
the expected value, to the model's raw score (a probability for forests, log-odds for boosters).
"""

from dataclasses import dataclass
from math import factorial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .tree_arrays import TreeArrays, UnsupportedModel, read_tree_arrays, route

Explanation = dict[str, Any]
"""What a row's explanation says: output units, expected value, top features."""
ADDITIVITY_TOLERANCE = 1e-6
SERVED_TOLERANCE = 1e-5  # onnxruntime sums the trees in float32
CHUNK_CELLS = 400_000
BUCKET = 4  # path depths per table: padding costs flops, more tables cost numpy calls


@dataclass(frozen=True)
class Leaves:
    """Leaves whose paths test at most `depth` distinct features, as padded tables
    (leaves x depth); padding slots are (z=1, o=0), a factor of 1."""

    value: NDArray[np.float64]  # (L,)
    column: NDArray[np.intp]  # (L, D) input column of each path feature (0 for padding)
    low: NDArray[np.float64]  # (L, D) the path's splits on it hold for low < x <= high
    high: NDArray[np.float64]
    share: NDArray[np.float64]  # (L, D) z: the fit rows' share following those splits
    valid: NDArray[np.bool_]  # (L, D) False for padding
    weights: NDArray[np.float64]  # (L, D) Shapley weight of a coalition of k, per leaf

    def contributions(self, x: NDArray[np.float64], width: int) -> NDArray[np.float64]:
        """These leaves' SHAP values for rows `x`: (rows, width)."""
        rows, (count, depth) = len(x), self.column.shape
        values = x[:, self.column]  # (R, L, D)
        o = (self.valid & (values > self.low) & (values <= self.high)).astype(np.float64)
        z = np.broadcast_to(self.share, o.shape)
        # poly[..., k]: the coefficient of t^k in prod_j (z_j + o_j t).
        poly = np.zeros((rows, count, depth + 1))
        poly[..., 0] = 1.0
        for d in range(depth):
            poly[..., 1 : d + 2] = (
                poly[..., 1 : d + 2] * z[..., d, None] + poly[..., : d + 1] * o[..., d, None]
            )
            poly[..., 0] *= z[..., d]
        # Divide out feature i's own factor, then weigh the coefficients: by z_i where
        # o_i = 0; by (z_i + t) where o_i = 1, from the top (F_k = z Q_k + Q_(k-1)).
        weighted_off = np.divide(
            np.einsum("rlk,lk->rl", poly[..., :depth], self.weights)[..., None],
            z,
            out=np.zeros(o.shape),
            where=z > 0,
        )
        carry = np.repeat(poly[..., depth, None], depth, axis=2)
        weighted_on = carry * self.weights[:, None, depth - 1]
        for k in range(depth - 1, 0, -1):
            carry = poly[..., k, None] - z * carry
            weighted_on += carry * self.weights[:, None, k - 1]
        weighted = np.where(o > 0, weighted_on, weighted_off)
        phi = self.value[:, None] * (o - z) * weighted * self.valid  # (R, L, D)
        out = np.zeros((rows, width))
        for r in range(rows):
            out[r] = np.bincount(self.column.ravel(), weights=phi[r].ravel(), minlength=width)
        return out


@dataclass(frozen=True)
class Explainer:
    """One model's leaves, bucketed by path depth so short paths are not padded to the
    longest."""

    features: list[str]
    output: str  # "probability" or "log_odds": the units of the contributions
    expected_value: float
    buckets: list[Leaves]

    def contributions(self, x: NDArray[Any]) -> NDArray[np.float64]:
        """SHAP values per row and input column: (rows, columns)."""
        x = np.asarray(x, dtype=np.float32).astype(np.float64)
        out = np.zeros((len(x), len(self.features)))
        for leaves in self.buckets:
            # Rows in chunks: the work arrays are rows x leaves x depth.
            step = max(1, CHUNK_CELLS // leaves.column.size)
            for start in range(0, len(x), step):
                out[start : start + step] += leaves.contributions(
                    x[start : start + step], len(self.features)
                )
        return out

    def explain(self, x: NDArray[Any], top: int) -> list[Explanation]:
        """For each row: the expected value and the `top` features by |contribution|."""
        x = np.asarray(x, dtype=np.float32)
        explained = []
        for row, phi in zip(x.tolist(), self.contributions(x).tolist(), strict=True):
            order = sorted(range(len(phi)), key=lambda j: -abs(phi[j]))[:top]
            explained.append(
                {
                    "output": self.output,
                    "expected_value": self.expected_value,
                    "top_features": [
                        {"feature": self.features[j], "value": row[j], "contribution": phi[j]}
                        for j in order
                    ],
                }
            )
        return explained


def _leaf_paths(trees: TreeArrays) -> list[tuple[int, dict[int, list[float]]]]:
    """Each leaf and, per feature on its path: [low, high, share]."""
    paths = []
    stack: list[tuple[int, dict[int, list[float]]]] = [(int(r), {}) for r in trees.roots]
    while stack:
        node, path = stack.pop()
        if trees.mode[node] == 0:
            paths.append((node, path))
            continue
        f = int(trees.feature[node])
        t = float(trees.threshold[node])
        parent_cover = float(trees.cover[node])
        below = float(np.nextafter(np.float32(t), np.float32(-np.inf)))
        # Each mode as the interval (low, high] its true and false branches keep, for
        # float32 inputs: x < t is x <= the float32 just below t.
        true_bounds, false_bounds = {
            1: ((-np.inf, t), (t, np.inf)),
            2: ((-np.inf, below), (below, np.inf)),
            3: ((below, np.inf), (-np.inf, below)),
            4: ((t, np.inf), (-np.inf, t)),
        }[int(trees.mode[node])]
        for child, (low, high) in (
            (int(trees.true_child[node]), true_bounds),
            (int(trees.false_child[node]), false_bounds),
        ):
            share = float(trees.cover[child]) / parent_cover if parent_cover > 0 else 0.5
            old = path.get(f, [-np.inf, np.inf, 1.0])
            branch = dict(path)
            branch[f] = [max(old[0], low), min(old[1], high), old[2] * share]
            stack.append((child, branch))
    return paths


def _leaves(trees: TreeArrays, paths: list[tuple[int, dict[int, list[float]]]]) -> Leaves:
    """The padded tables of some leaves."""
    count, depth = len(paths), max(len(path) for _, path in paths) or 1
    column = np.zeros((count, depth), dtype=np.intp)
    low = np.full((count, depth), -np.inf)
    high = np.full((count, depth), np.inf)
    share = np.ones((count, depth))
    valid = np.zeros((count, depth), dtype=bool)
    weights = np.zeros((count, depth))
    for i, (_, path) in enumerate(paths):
        for d, (f, (lo, hi, z)) in enumerate(path.items()):
            column[i, d], low[i, d], high[i, d], share[i, d], valid[i, d] = f, lo, hi, z, True
        m = len(path)
        weights[i, :m] = [factorial(k) * factorial(m - k - 1) / factorial(m) for k in range(m)]
    value = np.array([trees.value[leaf] for leaf, _ in paths])
    return Leaves(value, column, low, high, share, valid, weights)


def build_explainer(
    onnx_bytes: bytes,
    features: list[str],
    probe: NDArray[Any],
    served: NDArray[np.float32] | None = None,
) -> Explainer:
    """The explainer of a served model, checked on `probe` rows: the trees must score them as
    onnxruntime did (`served`) and the contributions must add up; UnsupportedModel otherwise."""
    trees = read_tree_arrays(onnx_bytes)
    if not np.any(trees.cover != 1.0):
        raise UnsupportedModel("the model carries no cover (exported before explanations)")
    paths = _leaf_paths(trees)
    reach = [float(np.prod([s for _, _, s in path.values()])) for _, path in paths]
    expected = trees.base + float(np.dot([trees.value[leaf] for leaf, _ in paths], reach))
    # A leaf of value 0 (a forest's pure legitimate leaf) contributes nothing to any row.
    scoring = [(leaf, path) for leaf, path in paths if trees.value[leaf] != 0]
    buckets = []
    for top in range(BUCKET, max((len(p) for _, p in scoring), default=0) + BUCKET, BUCKET):
        chosen = [(leaf, p) for leaf, p in scoring if top - BUCKET < max(len(p), 1) <= top]
        if chosen:
            buckets.append(_leaves(trees, chosen))
    explainer = Explainer(
        features=list(features),
        output="log_odds" if trees.logistic else "probability",
        expected_value=expected,
        buckets=buckets,
    )
    raw, _ = route(trees, probe)
    if served is not None:
        mine = 1 / (1 + np.exp(-raw)) if trees.logistic else raw
        if not np.allclose(mine, served, rtol=0, atol=SERVED_TOLERANCE):
            raise UnsupportedModel("the tree arrays do not score as the served model does")
    total = explainer.expected_value + explainer.contributions(probe).sum(axis=1)
    if not np.allclose(total, raw, rtol=0, atol=ADDITIVITY_TOLERANCE):
        raise UnsupportedModel("contributions do not add up to the model's score")
    return explainer
