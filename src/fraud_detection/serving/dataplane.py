"""Inference independent of the wire format: lookup, readiness, routing, scoring, logging, timing.

Both APIs call one `DataPlane`: `/predict` through `predict`, V2 through `infer`. Routing, sticky
by a stable hash of the row's id (the same transaction meets the same model in every worker):
during a rollout the `canary` alias takes the share its alias carries (the lowest hashes, so a
row stays on the canary as the share grows); with a `challenger` alias served,
FRAUD_CHALLENGER_TRAFFIC sends that share of the other rows to it, or FRAUD_SHADOW=1 scores
every row with it too and answers with the champion.
"""

import logging
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ..config import Settings
from ..errors import (
    LogUnavailable,
    ModelNotReady,
    PredictionLogError,
    UnknownModel,
    VersionNotServed,
)
from ..explain import Explanation
from ..inference import decide
from ..log_record import SHADOW, Labels, LoggedBatch, label_records, utc_now
from ..registry import CANARY, CHALLENGER, CHAMPION
from . import metrics
from .holder import ModelHolder
from .log_writer import PredictionLogWriter
from .model import LoadedModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    """Probabilities and decisions for some rows, and the model and variant that made them."""

    probabilities: NDArray[np.float32]
    is_fraud: NDArray[np.bool_]
    model: LoadedModel
    variant: str


@dataclass(frozen=True)
class Part:
    """Rows of a request one model scored (positions, features, ids); shadow parts are not
    answered. `explanations` holds the rows explained (by position in the part): None where
    the model cannot explain."""

    scored: Scored
    rows: NDArray[np.intp]
    x: NDArray[np.float32]
    ids: list[str]
    answered: bool = True
    explanations: dict[int, Explanation | None] = field(default_factory=dict)


class Answer(NamedTuple):
    """One row's answer."""

    transaction_id: str
    probability: float
    is_fraud: bool
    model: LoadedModel
    explained: bool
    explanation: Explanation | None


@dataclass(frozen=True)
class Prediction:
    """A request's outcome: every row answered by exactly one part, in `model`'s name."""

    model: LoadedModel
    ids: list[str]
    parts: list[Part]

    def answers(self) -> list[Answer]:
        """Each row's answer, in request order."""
        rows: list[Any] = [None] * len(self.ids)
        for part in self.parts:
            if not part.answered:
                continue
            model = part.scored.model
            for i, (row, tid, p, flag) in enumerate(
                zip(
                    part.rows.tolist(),
                    part.ids,
                    part.scored.probabilities.tolist(),
                    part.scored.is_fraud.tolist(),
                    strict=True,
                )
            ):
                explained = i in part.explanations
                rows[row] = Answer(tid, p, flag, model, explained, part.explanations.get(i))
        return rows


def bucket(transaction_id: str) -> float:
    """A stable position in [0, 1) for an id (Python's hash() differs per process)."""
    return zlib.crc32(transaction_id.encode()) / 2**32


@lru_cache(maxsize=64)
def _latency(endpoint: str, version: str) -> Any:
    """The latency child of one endpoint and model version, bound once, not per request."""
    return metrics.LATENCY.labels(endpoint, version)


@lru_cache(maxsize=64)
def _children(version: str, variant: str) -> tuple[Any, Any, Any]:
    """The labelled metric children of one model version, bound once, not per request."""
    return (
        metrics.PREDICTIONS.labels(version, variant, "fraud"),
        metrics.PREDICTIONS.labels(version, variant, "legit"),
        metrics.SCORE.labels(version),
    )


def score(model: LoadedModel, x: NDArray[np.float32], variant: str) -> Scored:
    """Score rows with one model and count the outcome in the service metrics."""
    try:
        probabilities = model.score(x)
    except Exception:
        metrics.SCORING_ERRORS.labels(model.version, variant).inc(len(x))
        raise
    is_fraud = decide(probabilities, model.threshold)
    frauds = int(np.count_nonzero(is_fraud))
    fraud_count, legit_count, score_histogram = _children(model.version, variant)
    if frauds:
        fraud_count.inc(frauds)
    if len(x) - frauds:
        legit_count.inc(len(x) - frauds)
    for p in probabilities.tolist():
        score_histogram.observe(p)
    return Scored(probabilities, is_fraud, model, variant)


class DataPlane:
    """What both APIs call: the served models, the routing policy and the prediction log."""

    def __init__(
        self, settings: Settings, holder: ModelHolder, prediction_log: PredictionLogWriter
    ) -> None:
        self.settings = settings
        self.holder = holder
        self.prediction_log = prediction_log

    def start(self) -> None:
        """Load the models and start the reloader and the log writer."""
        self.holder.start(self.settings.reload_interval)
        self.prediction_log.start()

    def close(self) -> None:
        """Stop the reloader and flush the log: the one shutdown of a worker or a test."""
        self.holder.stop()
        self.prediction_log.close()

    @property
    def ready(self) -> bool:
        """True once a champion is loaded."""
        return self.holder.ready

    def champion(self) -> LoadedModel:
        """The champion; ModelNotReady while none is loaded."""
        model = self.holder.champion
        if model is None:
            raise ModelNotReady("no model loaded yet; retry shortly")
        return model

    def model(self, name: str, version: str | None = None) -> LoadedModel:
        """The served model a V2 path names (its champion without a version)."""
        if name != self.settings.model_name:
            raise UnknownModel(
                f"unknown model {name!r}; this server serves {self.settings.model_name!r}"
            )
        champion = self.champion()
        if version is None:
            return champion
        canary = self.holder.canary
        for model in (champion, self.holder.challenger, canary.model if canary else None):
            if model is not None and model.version == version:
                return model
        raise VersionNotServed(f"version {version!r} of {name!r} is not served")

    def predict(
        self,
        x: NDArray[np.float32],
        ids: list[str],
        endpoint: str,
        started: float,
        explain: bool | None = None,
        event_times: Sequence[datetime | None] = (),
    ) -> Prediction:
        """Score rows addressed to the champion, routed A/B or shadow; explain every row when
        `explain` asks (the log writer explains flagged rows off the request path); log them
        (with each row's event time, when given) and time them."""
        champion = self.champion()
        parts = self._explain(self._route(x, ids, champion), explain)
        return self._finish(champion, parts, ids, endpoint, started, event_times)

    def infer(
        self,
        name: str,
        version: str | None,
        x: NDArray[np.float32],
        ids: list[str],
        endpoint: str,
        started: float,
        event_times: Sequence[datetime | None] = (),
    ) -> Prediction:
        """V2 infer: without a version, rows are routed like /predict's; a version in the path
        pins them: every row is scored by that version alone (no A/B share, no shadow)."""
        model = self.model(name, version)
        if version is None:
            parts = self._route(x, ids, model)
        else:
            canary = self.holder.canary
            variant = (
                CHAMPION
                if model is self.holder.champion
                else CANARY
                if canary is not None and model is canary.model
                else CHALLENGER
            )
            parts = [Part(score(model, x, variant), np.arange(len(x)), x, ids)]
        return self._finish(model, parts, ids, endpoint, started, event_times)

    def _explain(self, parts: list[Part], explain: bool | None) -> list[Part]:
        """Explain every answered row when the request asks; otherwise no row pays for it on
        the request path (the log writer explains the flagged ones for the review queue)."""
        if not explain:
            return parts
        explained = []
        for part in parts:
            if not part.answered:
                explained.append(part)
                continue
            explainer = part.scored.model.explainer
            found: list[Explanation | None] = (
                [None] * len(part.x)
                if explainer is None
                else list(explainer.explain(part.x, self.settings.explain_top))
            )
            explained.append(replace(part, explanations=dict(enumerate(found))))
        return explained

    def _route(self, x: NDArray[np.float32], ids: list[str], champion: LoadedModel) -> list[Part]:
        """Score each row with the model its variant assigns; every row is answered once."""
        every = np.arange(len(x))
        challenger = self.holder.challenger
        if challenger is not None and challenger.version == champion.version:
            challenger = None
        canary = self.holder.canary  # read once: its model and share change together
        if canary is not None and canary.model.version == champion.version:
            canary = None
        if challenger is None and canary is None:
            return [Part(score(champion, x, CHAMPION), every, x, ids)]
        positions = np.array([bucket(tid) for tid in ids])
        canary_share = canary.share if canary is not None else 0.0
        challenger_share = 0.0 if self.settings.shadow else self.settings.challenger_traffic
        to_canary = positions < canary_share
        to_challenger = ~to_canary & (positions < canary_share + challenger_share)
        routes = [(champion, CHAMPION, ~to_canary & ~to_challenger)]
        if challenger is not None:
            routes.append((challenger, CHALLENGER, to_challenger))
        if canary is not None:
            routes.append((canary.model, CANARY, to_canary))
        parts = []
        for model, variant, mask in routes:
            if mask.any():
                rows = every[mask]
                part_ids = [ids[row] for row in rows.tolist()]
                parts.append(Part(score(model, x[mask], variant), rows, x[mask], part_ids))
        if challenger is not None and self.settings.shadow:
            parts.append(Part(score(challenger, x, SHADOW), every, x, ids, answered=False))
        return parts

    def _finish(
        self,
        model: LoadedModel,
        parts: list[Part],
        ids: list[str],
        endpoint: str,
        started: float,
        event_times: Sequence[datetime | None],
    ) -> Prediction:
        """Queue every part for the prediction log and record the request's latency."""
        created_at = utc_now()
        latency_ms = (time.perf_counter() - started) * 1000
        timed = any(at is not None for at in event_times)
        for part in parts:
            scored = part.scored
            self.prediction_log.log(
                LoggedBatch(
                    ids=part.ids,
                    features=part.x,
                    probabilities=scored.probabilities,
                    is_fraud=scored.is_fraud,
                    threshold=scored.model.threshold,
                    version=scored.model.version,
                    variant=scored.variant,
                    endpoint=endpoint,
                    created_at=created_at,
                    latency_ms=latency_ms,
                    explanations=part.explanations,
                    event_times=[event_times[row] for row in part.rows.tolist()] if timed else (),
                )
            )
        answering = {part.scored.model.version for part in parts if part.answered}
        version = answering.pop() if len(answering) == 1 else model.version
        _latency(endpoint, version).observe(time.perf_counter() - started)
        return Prediction(model, ids, parts)

    def feedback(self, labels: Labels) -> int:
        """Store labels by transaction id, with their provenance; LogUnavailable (details in
        the server log) when the database is down."""
        records = label_records(labels)
        try:
            self.prediction_log.sink.store_labels(records)
        except PredictionLogError as exc:
            log.warning("feedback not stored: %s", exc)
            raise LogUnavailable("prediction log unavailable; retry later") from exc
        frauds = sum(record.label for record in records)
        if frauds:
            metrics.FEEDBACK.labels("fraud").inc(frauds)
        if len(records) - frauds:
            metrics.FEEDBACK.labels("legit").inc(len(records) - frauds)
        return len(records)

    def reload(self) -> bool:
        """Follow the aliases now instead of at the next poll; True on success."""
        return self.holder.reload()
