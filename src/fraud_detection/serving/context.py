"""What a route handler reaches through Flask's app context (transport side, not data plane)."""

from typing import Any, cast

from flask import Request, current_app, request

from .dataplane import DataPlane
from .endpoints import METRIC_LABELS
from .metrics import OTHER


def current_plane() -> DataPlane:
    """The data plane of the app handling this request."""
    return cast(DataPlane, current_app.extensions["fraud"])


def current_request() -> Request:
    """The request itself rather than Flask's proxy to it: every attribute read through the
    proxy looks the request up again, which the hot path pays for a dozen times."""
    return cast(Request, request._get_current_object())  # type: ignore[attr-defined]


def metric_label(req: Request) -> str:
    """The endpoint label of the route handling `req`, from the endpoint table."""
    return METRIC_LABELS.get(req.endpoint or "", OTHER)


def openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document, built once with it."""
    return cast(dict[str, Any], current_app.extensions["fraud_openapi"])
