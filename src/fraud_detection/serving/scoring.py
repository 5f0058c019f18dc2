"""The scoring core both APIs call: a validated numpy batch in, decisions and metrics out."""

import time
from dataclasses import dataclass

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


def score(model: LoadedModel, x: NDArray[np.float32], variant: str = "champion") -> Scored:
    """Score rows with one model and count the outcome in the service metrics."""
    probabilities = model.score(x)
    is_fraud = probabilities >= model.threshold
    frauds = int(is_fraud.sum())
    version = model.version
    if frauds:
        metrics.PREDICTIONS.labels(version, variant, "fraud").inc(frauds)
    if len(x) - frauds:
        metrics.PREDICTIONS.labels(version, variant, "legit").inc(len(x) - frauds)
    for p in probabilities:
        metrics.SCORE.labels(version).observe(float(p))
    return Scored(probabilities, is_fraud, model, variant)


def observe_latency(endpoint: str, version: str, started: float) -> None:
    """Record the request's latency from `started` (a perf_counter reading)."""
    metrics.LATENCY.labels(endpoint, version).observe(time.perf_counter() - started)
