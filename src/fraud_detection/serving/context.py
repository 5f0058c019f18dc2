"""What a route handler reaches through Flask's app context (transport side, not data plane)."""

from typing import cast

from flask import current_app
from prometheus_client import CollectorRegistry

from .dataplane import DataPlane


def current_plane() -> DataPlane:
    """The data plane of the app handling this request."""
    return cast(DataPlane, current_app.extensions["fraud"])


def http_metrics_registry() -> CollectorRegistry:
    """The app's own registry of HTTP metrics (tests build many apps in one process)."""
    return cast(CollectorRegistry, current_app.extensions["fraud_http_metrics"])
