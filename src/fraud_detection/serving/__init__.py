"""The Flask service: `create_app(settings)` builds it, `close_app(app)` stops its resources."""

from flask import Flask
from prometheus_client import CollectorRegistry
from prometheus_flask_exporter import PrometheusMetrics

from ..config import Settings, get_settings
from ..registry import Registry
from ..sql_sink import open_sink
from ..store import open_store
from . import ops, predict, v2
from .auth import install_auth
from .dataplane import DataPlane
from .holder import ModelHolder
from .http_errors import install_error_handlers
from .log_writer import PredictionLogWriter
from .review import install_review

ENDPOINTS = {"predict.predict": "predict", "v2.infer": "v2_infer", "predict.feedback": "feedback"}


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
        open_sink(settings.database_url),
        capacity=settings.log_capacity,
        spool_dir=settings.log_spool_dir,
    )
    plane = DataPlane(settings, holder, prediction_log)
    app.extensions["fraud"] = plane
    for blueprint in (predict.bp, v2.bp, ops.bp):
        app.register_blueprint(blueprint)
    install_review(app, settings)
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
    install_error_handlers(app, ENDPOINTS)
    plane.start()
    return app


def close_app(app: Flask) -> None:
    """Stop the reloader and flush the prediction log (a worker's exit, a test's teardown)."""
    plane: DataPlane = app.extensions["fraud"]
    plane.close()
