"""Open Inference Protocol (KServe V2) REST endpoints over the same data plane as /predict."""

import time
from typing import Any

from flask import Blueprint

from .bodies import V2Live, V2ModelReady, V2Ready
from .codecs import (
    body_response,
    decode_v2,
    encode_server_metadata,
    encode_v2,
    encode_v2_metadata,
)
from .context import current_plane, current_request, metric_label
from .endpoints import route

bp = Blueprint("v2", __name__)


@route(bp)
def live() -> Any:
    return body_response(V2Live(live=True))


@route(bp)
def ready() -> Any:
    is_ready = current_plane().ready
    return body_response(V2Ready(ready=is_ready), 200 if is_ready else 503)


@route(bp)
def server_metadata() -> Any:
    return body_response(encode_server_metadata())


@route(bp)
def model_metadata(name: str, version: str | None = None) -> Any:
    return body_response(encode_v2_metadata(name, current_plane().model(name, version)))


@route(bp)
def model_ready(name: str, version: str | None = None) -> Any:
    current_plane().model(name, version)
    return body_response(V2ModelReady(name=name, ready=True))


@route(bp)
def infer(name: str, version: str | None = None) -> Any:
    """Score an [N, 30] tensor; outputs `probabilities` (FP32) and `is_fraud` (BOOL)."""
    started = time.perf_counter()
    plane = current_plane()
    plane.model(name, version)  # an unknown model is a 404 whatever the body
    req = current_request()
    body = decode_v2(req, plane.settings.max_batch)
    prediction = plane.infer(
        name, version, body.x, body.ids, metric_label(req), started, body.event_times
    )
    return encode_v2(name, body, prediction)
