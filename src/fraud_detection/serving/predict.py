"""`POST /predict` (one transaction or a batch), `POST /feedback` and `GET /models`."""

from typing import Any

from flask import Blueprint, jsonify

from ..errors import CodecError, PredictionLogError
from ..prediction_log import store_labels
from ..registry import CHALLENGER, CHAMPION
from . import metrics
from .codecs import decode_feedback, decode_predict
from .log_writer import new_batch
from .model import LoadedModel
from .routing import route
from .scoring import observe_latency
from .state import champion, json_body, json_response, now, state, transaction_ids

bp = Blueprint("predict", __name__)


@bp.post("/predict")
def predict() -> Any:
    """Score one transaction, or {"instances": [...]}; answers per transaction."""
    started = now()
    service = state()
    request = decode_predict(json_body(), service.settings.max_batch)
    served = champion(service)
    ids = transaction_ids(request.ids)
    parts = route(
        request.x,
        ids,
        served,
        service.holder.challenger,
        challenger_traffic=service.settings.challenger_traffic,
        shadow=service.settings.shadow,
    )
    answers: list[dict[str, Any]] = [{} for _ in ids]
    for part in parts:
        model = part.scored.model
        if part.answered:
            for row, tid, p, flag in zip(
                part.rows.tolist(),
                part.ids,
                part.scored.probabilities.tolist(),
                part.scored.is_fraud.tolist(),
                strict=True,
            ):
                answers[row] = {
                    "transaction_id": tid,
                    "fraud_probability": round(p, 6),
                    "is_fraud": flag,
                    "threshold": model.threshold,
                    "model_version": model.version,
                }
        service.prediction_log.log(new_batch(part.scored, part.x, part.ids, "predict", started))
    body = (
        {"predictions": answers, "model_version": served.version} if request.batch else answers[0]
    )
    observe_latency("predict", served.version, started)
    return json_response(body)


@bp.post("/feedback")
def feedback() -> Any:
    """Store analyst labels ({transaction_id, label} or {"labels": [...]}) by transaction id."""
    service = state()
    labels = decode_feedback(json_body(), service.settings.max_batch)
    try:
        store_labels(service.prediction_log.engine(), labels)
    except PredictionLogError as exc:
        raise CodecError(
            f"{exc}; retry later", status=503, reason="prediction_log_unavailable"
        ) from exc
    frauds = sum(labels.values())
    if frauds:
        metrics.FEEDBACK.labels("fraud").inc(frauds)
    if len(labels) - frauds:
        metrics.FEEDBACK.labels("legit").inc(len(labels) - frauds)
    return json_response({"stored": len(labels)})


def describe(model: LoadedModel | None) -> dict[str, Any] | None:
    """What an operator wants to know about a served model."""
    if model is None:
        return None
    return {
        "version": model.version,
        "threshold": model.threshold,
        "metrics": model.manifest.get("metrics", {}).get("test"),
        "created_at": model.manifest.get("created_at"),
        "loaded_at": model.loaded_at,
        "source": model.source,
        "synthetic": model.manifest.get("data", {}).get("synthetic", False),
    }


@bp.get("/models")
def models() -> Any:
    """The champion (and challenger) this worker serves."""
    holder = state().holder
    return jsonify(
        {
            "name": state().settings.model_name,
            CHAMPION: describe(holder.champion),
            CHALLENGER: describe(holder.challenger),
        }
    )
