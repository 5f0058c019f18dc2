"""flask_http_* for the routes the endpoint table counts, labelled from closed sets only: the
table's path rules (`other` where no route matched), standard methods, registered statuses."""

import time
from collections.abc import Set

from flask import Flask, Response, request

from . import metrics

STARTED = "fraud.http_started"


def install_http_metrics(app: Flask, uncounted: Set[str]) -> None:
    """Time and count every request except those to the `uncounted` Flask endpoints. Install
    it before any other before_request hook, so that a request they refuse is timed too."""

    @app.before_request
    def start() -> None:
        if request.endpoint not in uncounted:
            request.environ[STARTED] = time.perf_counter()

    @app.after_request
    def count(response: Response) -> Response:
        started = request.environ.get(STARTED)
        if started is None:
            return response
        method = metrics.method_label(request.method)
        status = metrics.status_label(response.status_code)
        rule = request.url_rule.rule if request.url_rule is not None else metrics.OTHER
        metrics.HTTP_LATENCY.labels(method, rule, status).observe(time.perf_counter() - started)
        metrics.HTTP_REQUESTS.labels(method, status).inc()
        return response
