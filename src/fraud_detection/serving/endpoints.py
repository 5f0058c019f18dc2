"""Every route the service answers, in one table: its paths, who may call it, how it is counted.

The blueprints register their views from it (`route`), auth guards by it, the metrics label
and skip by it, the OpenAPI document marks its guarded operations by it, the gunicorn worker
answers small requests to its `inline` routes in its event loop, and the fast path takes
/predict's paths and metric label from it. A view that is not in the table cannot be
registered.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from flask import Blueprint
from flask.typing import RouteCallable

from .metrics import OTHER

# Guard kinds: OPEN needs no token; the others are entries of auth.GUARDS (a new kind is one
# entry there and the routes here that name it).
OPEN = "open"
SCORING = "scoring"
ADMIN = "admin"
ANALYST = "analyst"


@dataclass(frozen=True)
class Endpoint:
    """One route: Flask's endpoint name ("<blueprint>.<view>"), its path rules and methods."""

    name: str
    paths: tuple[str, ...]
    methods: tuple[str, ...] = ("GET",)
    guard: str = OPEN
    metric: str = OTHER
    """The endpoint label of fraud_request_errors_total, fraud_prediction_latency_seconds and
    the prediction log's endpoint column."""
    http_metrics: bool = True
    """Counted in flask_http_*. Scoring routes are not: fraud_prediction_latency_seconds and
    fraud_request_errors_total measure them, with model labels, at half the cost."""
    api: bool = True
    """In /openapi.json; the review pages are not: a browser's HTML forms, not an API."""
    inline: bool = False
    """CPU-bound, never waiting on the database or S3: a small request is answered by the
    worker's event loop rather than a thread (gunicorn_worker)."""


POST = ("POST",)


def _review(view: str, path: str, methods: tuple[str, ...] = ("GET",)) -> Endpoint:
    """A review page: behind the analysts' sign-in, not in the API document."""
    return Endpoint(f"review.{view}", (f"/review{path}",), methods, ANALYST, api=False)


_V2_MODEL = ("/v2/models/<name>", "/v2/models/<name>/versions/<version>")
_V2_READY = tuple(f"{p}/ready" for p in _V2_MODEL)
_V2_INFER = tuple(f"{p}/infer" for p in _V2_MODEL)

ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint(
            "predict.predict",
            ("/predict",),
            POST,
            SCORING,
            "predict",
            http_metrics=False,
            inline=True,
        ),
        Endpoint("predict.feedback", ("/feedback",), POST, SCORING, "feedback"),
        Endpoint("predict.models", ("/models",)),
        Endpoint("ops.health", ("/health",)),
        Endpoint("ops.prometheus_metrics", ("/metrics",), http_metrics=False),
        Endpoint("ops.openapi", ("/openapi.json",)),
        Endpoint("ops.reload", ("/admin/reload",), POST, ADMIN),
        Endpoint("v2.live", ("/v2/health/live",)),
        Endpoint("v2.ready", ("/v2/health/ready",)),
        Endpoint("v2.server_metadata", ("/v2",)),
        Endpoint("v2.model_metadata", _V2_MODEL),
        Endpoint("v2.model_ready", _V2_READY),
        Endpoint("v2.infer", _V2_INFER, POST, SCORING, "v2_infer", http_metrics=False, inline=True),
        _review("queue", ""),
        _review("alert", "/alerts/<int:alert_id>"),
        _review("label", "/alerts/<int:alert_id>/label", POST),
        _review("undo", "/undo", POST),
        _review("sign_in", "/sign-in", ("GET", "POST")),
        _review("sign_out", "/sign-out", POST),
        # Flask's own, for the blueprint's static_folder.
        Endpoint("review.static", ("/review/static/<path:filename>",), api=False),
    )
}
# Flask endpoint name -> metric label, for the routes that have their own.
METRIC_LABELS = {e.name: e.metric for e in ENDPOINTS.values() if e.metric != OTHER}


def inline_paths() -> re.Pattern[bytes]:
    """The request paths of the `inline` routes, a path parameter matching one segment."""
    paths = [
        re.sub(r"<[^>]+>", "[^/]+", re.escape(path))
        for e in ENDPOINTS.values()
        if e.inline
        for path in e.paths
    ]
    return re.compile("|".join(paths).encode())


View = TypeVar("View", bound=RouteCallable)


def route(bp: Blueprint) -> Callable[[View], View]:
    """Register a view at its table entry's paths (under the blueprint's url_prefix, which they
    start with); a view the table lacks is a KeyError."""

    def register(view: View) -> View:
        endpoint = ENDPOINTS[f"{bp.name}.{view.__name__}"]
        for path in endpoint.paths:
            rule = path.removeprefix(bp.url_prefix or "")
            bp.add_url_rule(rule, view_func=view, methods=list(endpoint.methods))
        return view

    return register
