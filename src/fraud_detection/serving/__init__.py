"""The Flask service: `create_app(settings)` builds it; nothing is created at import time."""

import atexit
import logging
from typing import Any

from flask import Flask, jsonify, request
from prometheus_client import CollectorRegistry
from prometheus_flask_exporter import PrometheusMetrics
from werkzeug.exceptions import HTTPException

from ..config import Settings, get_settings
from ..errors import CodecError
from ..prediction_log import open_engine
from ..registry import Registry
from ..store import open_store
from . import metrics, ops, predict, v2
from .auth import install_auth
from .holder import ModelHolder
from .log_writer import PredictionLogWriter
from .state import ServiceState

ENDPOINTS = {"predict.predict": "predict", "v2.infer": "v2_infer", "predict.feedback": "feedback"}


def _error(status: int, reason: str, message: str, field: str | None = None) -> Any:
    endpoint = ENDPOINTS.get(request.endpoint or "", "other")
    metrics.ERRORS.labels(endpoint, reason).inc()
    return jsonify({"error": {"code": reason, "message": message, "field": field}}), status


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CodecError)
    def codec_error(exc: CodecError) -> Any:
        return _error(exc.status, exc.reason, str(exc), exc.field)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        reason = "too_large" if status == 413 else f"http_{status}"
        return _error(status, reason, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        app.logger.exception("unhandled error")
        return _error(500, "internal", "internal error; it has been logged")


def create_app(settings: Settings | None = None, *, start_reloader: bool = True) -> Flask:
    """Build the service: load the champion (or start retrying), register the blueprints."""
    settings = settings or get_settings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    def registry() -> Registry:
        return Registry(open_store(settings.model_store), settings.model_name)

    holder = ModelHolder(registry, settings.serving_cache / settings.model_name)
    prediction_log = PredictionLogWriter(
        lambda: open_engine(settings.database_url), capacity=settings.log_capacity
    )
    if start_reloader:
        holder.start(settings.reload_interval)
    prediction_log.start()
    atexit.register(prediction_log.close)
    # HTTP metrics for the other routes, in a registry per app (tests build many apps in one
    # process). Scoring routes are left out: fraud_prediction_latency_seconds and
    # fraud_request_errors_total already measure them, with model labels, at half the cost.
    http_registry = CollectorRegistry()
    app.extensions["fraud"] = ServiceState(settings, holder, prediction_log, http_registry)
    for blueprint in (predict.bp, v2.bp, ops.bp):
        app.register_blueprint(blueprint)
    PrometheusMetrics(
        app,
        path=None,
        registry=http_registry,
        group_by="url_rule",
        excluded_paths=["^/metrics$", "^/predict$", "^/v2/models/.*/infer$"],
    )
    install_auth(app, settings)
    _register_error_handlers(app)
    return app
