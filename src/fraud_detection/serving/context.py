"""What a route handler reaches through Flask's app context (transport side, not data plane)."""

from typing import Any, cast

from flask import current_app, request

from .dataplane import DataPlane
from .endpoints import METRIC_LABELS
from .metrics import OTHER


def current_plane() -> DataPlane:
    """The data plane of the app handling this request."""
    return cast(DataPlane, current_app.extensions["fraud"])


def metric_label() -> str:
    """The endpoint label of the route handling this request, from the endpoint table."""
    return METRIC_LABELS.get(request.endpoint or "", OTHER)


def openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document, built once with it."""
    return cast(dict[str, Any], current_app.extensions["fraud_openapi"])
