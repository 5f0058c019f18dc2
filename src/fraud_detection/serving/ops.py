"""Operations endpoints: health, Prometheus metrics, the OpenAPI document, admin reload."""

from typing import Any

from flask import Blueprint, Response

from ..errors import ModelNotReady
from . import metrics
from .bodies import Health, Reloaded
from .codecs import body_response, json_response
from .context import current_plane, openapi_document
from .endpoints import route

bp = Blueprint("ops", __name__)


@route(bp)
def health() -> Any:
    """Liveness plus what is served; 503 while no model is loaded."""
    model = current_plane().holder.champion
    version = model.version if model else None
    return body_response(
        Health(status="ok" if model else "loading", model_version=version), 200 if model else 503
    )


@route(bp)
def prometheus_metrics() -> Response:
    multiprocess = bool(current_plane().settings.prometheus_multiproc_dir)
    body, content_type = metrics.exposition(multiprocess)
    return Response(body, content_type=content_type)


@route(bp)
def openapi() -> Any:
    return json_response(openapi_document())


@route(bp)
def reload() -> Any:
    """Follow the aliases now instead of at the next poll; 503 when there is still no model
    (the store has no champion), 502 when the store failed and the old model stays."""
    plane = current_plane()
    ok = plane.reload()
    model = plane.holder.champion
    if ok and model is None:
        raise ModelNotReady(
            f"no model: {plane.settings.model_store} has no champion to load "
            "(fraud train --promote, or fraud models promote VERSION)"
        )
    body = Reloaded(reloaded=ok, model_version=model.version if model else None)
    return body_response(body, 200 if ok else 502)
