"""Per-app resources the blueprints share, attached in init_app style."""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar, cast

import orjson
from flask import Response, current_app, request
from prometheus_client import CollectorRegistry

from ..config import Settings
from .auth import bearer_token, token_allowed
from .codecs import CodecError, parse_json
from .holder import ModelHolder
from .model import LoadedModel

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class ServiceState:
    """What a request needs besides its body: settings and the served models."""

    settings: Settings
    holder: ModelHolder
    http_registry: CollectorRegistry

    api_tokens: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.api_tokens = [t.strip() for t in self.settings.api_tokens.split(",") if t.strip()]


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


def requires_token(admin: bool = False) -> Callable[[F], F]:
    """Demand a Bearer token when tokens are configured (admin routes: the admin token)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            s = state()
            admin_tokens = [s.settings.admin_token] if s.settings.admin_token else []
            # With no token configured at all, auth is off (a local run); once any is set,
            # admin routes accept only the admin token.
            allowed = admin_tokens if admin else s.api_tokens
            auth_on = bool(s.api_tokens or admin_tokens) if admin else bool(allowed)
            if auth_on and not token_allowed(bearer_token(request), allowed):
                raise CodecError("missing or invalid bearer token", status=401)
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def new_transaction_id() -> str:
    """An id for a transaction that came without one."""
    return uuid.uuid4().hex


def now() -> float:
    """A perf_counter reading, for latency."""
    return time.perf_counter()
