"""flask_http_* for the routes the endpoint table counts, labelled from closed sets only: the
table's path rules (`other` where no route matched), standard methods, registered statuses."""

import time
from collections.abc import Set
from functools import lru_cache
from typing import Any

from flask import Flask, Response

from . import metrics
from .context import current_request

STARTED = "fraud.http_started"


@lru_cache(maxsize=1024)  # closed label sets: a few routes x methods x statuses
def _children(method: str, rule: str, status: str) -> tuple[Any, Any]:
    """The latency and count children of one label set, bound once, not per request."""
    return (
        metrics.HTTP_LATENCY.labels(method, rule, status),
        metrics.HTTP_REQUESTS.labels(method, status),
    )


def install_http_metrics(app: Flask, uncounted: Set[str]) -> None:
    """Time and count every request except those to the `uncounted` Flask endpoints. Install
    it before any other before_request hook, so that a request they refuse is timed too."""

    @app.before_request
    def start() -> None:
        req = current_request()
        if req.endpoint not in uncounted:
            req.environ[STARTED] = time.perf_counter()

    @app.after_request
    def count(response: Response) -> Response:
        req = current_request()
        started = req.environ.get(STARTED)
        if started is None:
            return response
        method = metrics.method_label(req.method)
        status = metrics.status_label(response.status_code)
        rule = req.url_rule.rule if req.url_rule is not None else metrics.OTHER
        latency, requests = _children(method, rule, status)
        latency.observe(time.perf_counter() - started)
        requests.inc()
        return response
