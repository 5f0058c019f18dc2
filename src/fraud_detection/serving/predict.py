"""`POST /predict` (one transaction or a batch) and `GET /models`."""

from typing import Any

from flask import Blueprint, jsonify

from ..registry import CHALLENGER, CHAMPION
from .codecs import decode_predict
from .model import LoadedModel
from .scoring import observe_latency, score
from .state import (
    champion,
    json_body,
    json_response,
    new_transaction_id,
    now,
    state,
)

bp = Blueprint("predict", __name__)


@bp.post("/predict")
def predict() -> Any:
    """Score one transaction, or {"instances": [...]}; answers per transaction."""
    started = now()
    service = state()
    request = decode_predict(json_body(), service.settings.max_batch)
    result = score(champion(service), request.x)
    model = result.model
    answers = [
        {
            "transaction_id": tid or new_transaction_id(),
            "fraud_probability": round(float(p), 6),
            "is_fraud": bool(flag),
            "threshold": model.threshold,
            "model_version": model.version,
        }
        for tid, p, flag in zip(request.ids, result.probabilities, result.is_fraud, strict=True)
    ]
    body = {"predictions": answers, "model_version": model.version} if request.batch else answers[0]
    observe_latency("predict", model.version, started)
    return json_response(body)


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
