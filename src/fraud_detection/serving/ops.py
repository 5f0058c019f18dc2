"""Operations endpoints: health, Prometheus metrics, the OpenAPI document, admin reload."""

from typing import Any

from flask import Blueprint, Response, jsonify

from . import metrics
from .openapi import openapi_document
from .state import state

bp = Blueprint("ops", __name__)


@bp.get("/health")
def health() -> Any:
    """Liveness plus what is served; 503 while no model is loaded."""
    holder = state().holder
    model = holder.champion
    body = {
        "status": "ok" if model else "loading",
        "model_version": model.version if model else None,
    }
    return jsonify(body), 200 if model else 503


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    body, content_type = metrics.exposition(state().http_registry)
    return Response(body, content_type=content_type)


@bp.get("/openapi.json")
def openapi() -> Any:
    return jsonify(openapi_document(state().settings))


@bp.post("/admin/reload")
def reload() -> Any:
    """Follow the aliases now instead of at the next poll."""
    holder = state().holder
    ok = holder.reload()
    model = holder.champion
    return jsonify({"reloaded": ok, "model_version": model.version if model else None}), (
        200 if ok else 502
    )
