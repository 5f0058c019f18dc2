"""The Flask service: `create_app(settings)` builds it, `close_app(app)` stops its resources."""

from typing import Any

from flask import Flask, request
from prometheus_client import CollectorRegistry
from prometheus_flask_exporter import PrometheusMetrics
from werkzeug.exceptions import HTTPException

from ..config import Settings, get_settings
from ..errors import STATUS_REASONS, ServiceError
from ..prediction_log import open_engine
from ..registry import Registry
from ..store import open_store
from . import metrics, ops, predict, v2
from .auth import install_auth
from .codecs import json_response
from .dataplane import DataPlane
from .holder import ModelHolder
from .log_writer import PredictionLogWriter

ENDPOINTS = {"predict.predict": "predict", "v2.infer": "v2_infer", "predict.feedback": "feedback"}


def _error_response(error: ServiceError) -> Any:
    """The one mapping of a service error to its HTTP answer and error metric.

    /v2 routes answer the Open Inference Protocol's error, {"error": "<message>"}, which its
    clients parse; the others answer {"error": {"code", "message", "field"}}.
    """
    endpoint = ENDPOINTS.get(request.endpoint or "", "other")
    metrics.ERRORS.labels(endpoint, error.reason).inc()
    body: dict[str, Any]
    # By path, not blueprint: a 404 or 405 under /v2 matched no route, so has no blueprint.
    if request.path == "/v2" or request.path.startswith("/v2/"):
        body = {"error": str(error)}
    else:
        body = {"error": {"code": error.reason, "message": str(error), "field": error.field}}
    response = json_response(body, error.status)
    response.headers.update(error.headers)
    return response


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError) -> Any:
        return _error_response(exc)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        reason = STATUS_REASONS.get(status, f"http_{status}")
        # werkzeug's own headers carry the Allow of a 405; the body is ours, so its type is too.
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return _error_response(
            ServiceError(exc.description or exc.name, status=status, reason=reason, headers=headers)
        )

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        app.logger.exception("unhandled error")
        return _error_response(
            ServiceError("internal error; it has been logged", status=500, reason="internal")
        )


def create_app(settings: Settings | None = None) -> Flask:
    """Build the service and start its resources: the model reloader and the log writer."""
    settings = settings or get_settings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    holder = ModelHolder(
        lambda: Registry(open_store(settings.model_store), settings.model_name),
        settings.serving_cache / settings.model_name,
    )
    prediction_log = PredictionLogWriter(
        lambda: open_engine(settings.database_url),
        capacity=settings.log_capacity,
        spool_dir=settings.log_spool_dir,
    )
    plane = DataPlane(settings, holder, prediction_log)
    app.extensions["fraud"] = plane
    for blueprint in (predict.bp, v2.bp, ops.bp):
        app.register_blueprint(blueprint)
    # HTTP metrics for the other routes, in a registry per app (tests build many apps in one
    # process). Scoring routes are left out: fraud_prediction_latency_seconds and
    # fraud_request_errors_total already measure them, with model labels, at half the cost.
    http_registry = CollectorRegistry()
    app.extensions["fraud_http_metrics"] = http_registry
    PrometheusMetrics(
        app,
        path=None,
        registry=http_registry,
        group_by="url_rule",
        excluded_paths=["^/metrics$", "^/predict$", "^/v2/models/.*/infer$"],
    )
    install_auth(app, settings)
    _register_error_handlers(app)
    plane.start()
    return app


def close_app(app: Flask) -> None:
    """Stop the reloader and flush the prediction log (a worker's exit, a test's teardown)."""
    plane: DataPlane = app.extensions["fraud"]
    plane.close()
