"""The drift baseline stored beside each model: per-feature quantile bins and score bins."""

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

N_BINS = 10
SCORE_EDGES = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
"""Fixed edges of fraud-probability bins: most mass sits near zero."""


def bin_counts(values: NDArray[Any], edges: NDArray[np.float64]) -> NDArray[np.int64]:
    """Rows of `values` in each bin: bin k holds edges[k-1] <= v < edges[k] (a value on an
    edge goes right); the outer bins are open-ended."""
    idx = np.searchsorted(edges, values, side="right")
    return np.bincount(idx, minlength=len(edges) + 1).astype(np.int64)


def shares_of_counts(counts: ArrayLike) -> list[float]:
    """Each bin's share of the rows counted."""
    arr = np.asarray(counts, dtype=np.int64)
    return [float(c) for c in arr / max(int(arr.sum()), 1)]


def bin_shares(values: NDArray[Any], edges: NDArray[np.float64]) -> list[float]:
    """Share of `values` in each bin; the outer bins are open-ended."""
    return shares_of_counts(bin_counts(values, edges))


def feature_bins(values: NDArray[Any], n_bins: int = N_BINS) -> dict[str, list[float]]:
    """Quantile edges of one feature and the share of rows in each bin."""
    quantiles = np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1])
    edges = np.unique(quantiles.astype(np.float64))
    return {"edges": [float(e) for e in edges], "proportions": bin_shares(values, edges)}


def score_bins(scores: NDArray[Any]) -> dict[str, list[float]]:
    """Fixed-edge histogram of fraud probabilities (SCORE_EDGES)."""
    edges = np.array(SCORE_EDGES)
    return {"edges": [float(e) for e in edges], "proportions": bin_shares(scores, edges)}


def build_reference(
    x: NDArray[Any], feature_names: Sequence[str], scores: NDArray[Any], threshold: float
) -> dict[str, Any]:
    """The baseline `fraud monitor` compares live traffic against (PSI per feature and score)."""
    return {
        "rows": len(x),
        "features": {name: feature_bins(x[:, i]) for i, name in enumerate(feature_names)},
        "score": score_bins(scores),
        "predicted_fraud_rate": float(np.mean(scores >= threshold)) if len(scores) else 0.0,
    }
