"""The Flask service: `create_app(settings)` builds it, `close_app(app)` stops its resources."""

from flask import Flask

from ..config import Settings
from ..registry import open_registry
from ..sql_sink import open_sink
from . import ops, predict, v2
from .auth import install_auth, required_tokens
from .dataplane import DataPlane
from .endpoints import ENDPOINTS
from .fast_path import ENDPOINT, PredictFastPath
from .holder import ModelHolder
from .http_errors import install_error_handlers
from .http_metrics import install_http_metrics
from .log_explain import RowExplainer
from .log_writer import PredictionLogWriter
from .openapi import openapi_document
from .review import install_review


def create_app(settings: Settings) -> Flask:
    """Build the service and start its resources: the model reloader and the log writer."""
    app = Flask(__name__, static_folder=None)  # every route is in the endpoint table
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    holder = ModelHolder(
        lambda: open_registry(settings),
        settings.serving_cache / settings.model_name,
    )
    prediction_log = PredictionLogWriter(
        open_sink(settings.database_url),
        capacity=settings.log_capacity,
        spool_dir=settings.log_spool_dir,
        spool_max_bytes=int(settings.log_spool_max_mb * 1024 * 1024),
        explain=RowExplainer(holder.explainer, settings.explain_top)
        if settings.explain_flagged
        else None,
    )
    plane = DataPlane(settings, holder, prediction_log)
    app.extensions["fraud"] = plane
    for blueprint in (predict.bp, v2.bp, ops.bp):
        app.register_blueprint(blueprint)
    install_review(app, settings)
    required = required_tokens(settings)
    app.extensions["fraud_openapi"] = openapi_document(settings, frozenset(required))
    install_http_metrics(app, {e.name for e in ENDPOINTS.values() if not e.http_metrics})
    install_auth(app, required)
    install_error_handlers(app)
    fast_path = PredictFastPath(app.wsgi_app, plane, required.get(ENDPOINT.name))
    app.wsgi_app = fast_path  # type: ignore[method-assign]
    plane.start()
    return app


def close_app(app: Flask) -> None:
    """Stop the reloader and flush the prediction log (a worker's exit, a test's teardown)."""
    plane: DataPlane = app.extensions["fraud"]
    plane.close()
