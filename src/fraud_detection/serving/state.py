"""Per-app resources the blueprints share, attached in init_app style."""

import time
import uuid
from dataclasses import dataclass
from typing import Any, cast

import orjson
from flask import Response, current_app, request
from prometheus_client import CollectorRegistry

from ..config import Settings
from ..errors import CodecError
from .codecs import parse_json
from .holder import ModelHolder
from .log_writer import PredictionLogWriter
from .model import LoadedModel


@dataclass
class ServiceState:
    """What a request needs besides its body: settings, the served models, the log."""

    settings: Settings
    holder: ModelHolder
    prediction_log: PredictionLogWriter
    http_registry: CollectorRegistry


def state() -> ServiceState:
    """The service state of the app handling this request."""
    return cast(ServiceState, current_app.extensions["fraud"])


def champion(service: ServiceState) -> LoadedModel:
    """The champion, or a 503 error while none is loaded."""
    model = service.holder.champion
    if model is None:
        raise CodecError("no model loaded yet; retry shortly", status=503)
    return model


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response serialised by orjson (the hot path's largest fixed cost otherwise)."""
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def json_body() -> Any:
    """The parsed JSON body; 415 for any other content type."""
    if request.mimetype != "application/json":
        raise CodecError(
            f"content type must be application/json, got {request.mimetype or 'none'!r}",
            status=415,
        )
    return parse_json(request.get_data(cache=False))


def transaction_ids(given: list[str | None]) -> list[str]:
    """The ids of a batch: those given, and a fresh one for each transaction without."""
    return [tid or uuid.uuid4().hex for tid in given]


def now() -> float:
    """A perf_counter reading, for latency."""
    return time.perf_counter()
