"""Every error answer of the service: a domain error, or one werkzeug raised before a route
ran, mapped once to its HTTP status and closed-set reason, then to the body of its API surface.

The reason is the body's error code (the /predict surface) and the `reason` label of
fraud_request_errors_total. /v2 routes answer the Open Inference Protocol's error,
{"error": "<message>"}, which its clients parse; the others {"error": {"code", "message",
"field"}}.
"""

from collections.abc import Mapping
from typing import NamedTuple

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from ..errors import (
    InvalidInput,
    LogUnavailable,
    ModelNotReady,
    RequestError,
    TooLarge,
    Unauthorized,
    UnknownModel,
    UnsupportedMediaType,
    VersionNotServed,
)
from . import metrics
from .bodies import Error, ErrorDetail, V2Error
from .codecs import body_response
from .context import current_request, metric_label


class Status(NamedTuple):
    """How one kind of error is answered."""

    code: int
    reason: str
    headers: Mapping[str, str] = {}


# The one table of domain errors: a subclass not listed takes its nearest listed base's entry.
STATUSES: dict[type[RequestError], Status] = {
    InvalidInput: Status(400, "invalid_request"),
    TooLarge: Status(413, "too_large"),
    UnsupportedMediaType: Status(415, "unsupported_media_type"),
    Unauthorized: Status(401, "unauthorized", {"WWW-Authenticate": "Bearer"}),
    UnknownModel: Status(404, "not_found"),
    VersionNotServed: Status(404, "not_found"),
    ModelNotReady: Status(503, "unavailable"),
    LogUnavailable: Status(503, "prediction_log_unavailable"),
}
# What werkzeug answers before a route runs: no route, a wrong method, a body over the limit,
# a malformed request. Any other status folds into http_4xx or http_5xx: a closed set.
HTTP_REASONS = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}
INTERNAL = "internal"


class Refusal(NamedTuple):
    """An error answer before its surface's body is chosen."""

    status: int
    reason: str
    message: str
    field: str | None = None
    headers: Mapping[str, str] = {}


UNEXPECTED = Refusal(500, INTERNAL, "internal error; it has been logged")
"""The answer to an exception no table names (the server log holds its traceback)."""


def refusal(error: RequestError) -> Refusal:
    """The answer to a domain error, from the table."""
    status = next(STATUSES[kind] for kind in type(error).__mro__ if kind in STATUSES)
    reason = status.reason
    if status.code == 400 and error.field is not None:
        reason = "invalid_field"
    return Refusal(status.code, reason, str(error), error.field, status.headers)


def http_refusal(exc: HTTPException) -> Refusal:
    """The answer to an error werkzeug raised; its headers carry the Allow of a 405."""
    status = exc.code or 500
    reason = HTTP_REASONS.get(status, f"http_{status // 100}xx")
    # The body is ours, so its content type is too.
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return Refusal(status, reason, exc.description or exc.name, None, headers)


def predict_body(error: Refusal) -> Error:
    """The /predict, /feedback and operations error body."""
    return Error(error=ErrorDetail(code=error.reason, message=error.message, field=error.field))


def v2_body(error: Refusal) -> V2Error:
    """The Open Inference Protocol error body."""
    return V2Error(error=error.message)


def error_response(error: Refusal, label: str, v2: bool) -> Response:
    """The answer to an error in its surface's shape, counted under the route's metric label
    (Flask's handlers below, and the /predict fast path)."""
    metrics.ERRORS.labels(label, error.reason).inc()
    response = body_response(v2_body(error) if v2 else predict_body(error), error.status)
    response.headers.update(error.headers)
    return response


def _answer(error: Refusal) -> Response:
    req = current_request()
    # By path, not blueprint: a 404 or 405 under /v2 matched no route, so has no blueprint.
    v2 = req.path == "/v2" or req.path.startswith("/v2/")
    return error_response(error, metric_label(req), v2)


def install_error_handlers(app: Flask) -> None:
    """Answer every error in its surface's shape and count it by the route's metric label."""

    @app.errorhandler(RequestError)
    def request_error(exc: RequestError) -> Response:
        return _answer(refusal(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return _answer(http_refusal(exc))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        app.logger.exception("unhandled error")
        return _answer(UNEXPECTED)
