"""The scoring core both APIs call: a validated numpy batch in, decisions and metrics out."""

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import metrics
from .model import LoadedModel


@dataclass(frozen=True)
class Scored:
    """Probabilities and decisions for a batch, and the model that made them."""

    probabilities: NDArray[np.float32]
    is_fraud: NDArray[np.bool_]
    model: LoadedModel
    variant: str


@lru_cache(maxsize=64)
def _children(version: str, variant: str) -> tuple[Any, Any, Any]:
    """The labelled metric children of one model version, bound once, not per request."""
    return (
        metrics.PREDICTIONS.labels(version, variant, "fraud"),
        metrics.PREDICTIONS.labels(version, variant, "legit"),
        metrics.SCORE.labels(version),
    )


def score(model: LoadedModel, x: NDArray[np.float32], variant: str = "champion") -> Scored:
    """Score rows with one model and count the outcome in the service metrics."""
    probabilities = model.score(x)
    is_fraud = probabilities >= model.threshold
    frauds = int(is_fraud.sum())
    fraud_count, legit_count, score_histogram = _children(model.version, variant)
    if frauds:
        fraud_count.inc(frauds)
    if len(x) - frauds:
        legit_count.inc(len(x) - frauds)
    for p in probabilities.tolist():
        score_histogram.observe(p)
    return Scored(probabilities, is_fraud, model, variant)


def observe_latency(endpoint: str, version: str, started: float) -> None:
    """Record the request's latency from `started` (a perf_counter reading)."""
    metrics.LATENCY.labels(endpoint, version).observe(time.perf_counter() - started)
