"""`POST /predict` (one transaction or a batch), `POST /feedback` and `GET /models`."""

import time
from typing import Any

from flask import Blueprint

from .bodies import Models, Stored
from .codecs import (
    body_response,
    decode_feedback,
    decode_predict,
    encode_canary,
    encode_model,
    encode_predict,
)
from .context import current_plane, current_request, metric_label
from .endpoints import route

bp = Blueprint("predict", __name__)


@route(bp)
def predict() -> Any:
    """Score one transaction, or {"instances": [...]}; answers per transaction, with the
    reasons (TreeSHAP) for every one with `explain` (the log writer explains flagged ones)."""
    started = time.perf_counter()
    plane = current_plane()
    req = current_request()
    body = decode_predict(req, plane.settings.max_batch)
    prediction = plane.predict(
        body.x, body.ids, metric_label(req), started, body.explain, body.event_times
    )
    return encode_predict(prediction, body.batch)


@route(bp)
def feedback() -> Any:
    """Store analyst labels ({transaction_id, label} or {"labels": [...]}) by transaction id."""
    plane = current_plane()
    stored = plane.feedback(decode_feedback(current_request(), plane.settings.max_batch))
    return body_response(Stored(stored=stored))


@route(bp)
def models() -> Any:
    """The champion (and challenger, and a rollout's canary with its share) this worker
    serves."""
    plane = current_plane()
    holder = plane.holder
    return body_response(
        Models(
            name=plane.settings.model_name,
            champion=encode_model(holder.champion),
            challenger=encode_model(holder.challenger),
            canary=encode_canary(holder.canary),
        )
    )
