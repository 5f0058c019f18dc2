"""Bearer-token guards, read from the endpoint table; tokens parsed once, from settings.

Each bearer guard kind names the setting that lists its tokens. With no bearer token set, auth
is off (a local run) and no hook is installed at all. Once any is set, a kind without tokens is
open if it is `open_when_unset` (scoring), else closed: admin then answers 401 to everyone.
A kind whose guard is None is checked by its blueprint: the review pages' analysts sign in once
and carry a signed session (review/access.py), not a bearer token.
"""

import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from flask import Flask, request

from ..config import Settings
from ..errors import Unauthorized
from .endpoints import ADMIN, ANALYST, ENDPOINTS, OPEN, SCORING


def split_tokens(value: str) -> tuple[str, ...]:
    """The tokens of a comma-separated setting."""
    return tuple(t.strip() for t in value.split(",") if t.strip())


@dataclass(frozen=True)
class Guard:
    """One guard kind: the setting that lists its tokens, and whether it is open without any."""

    tokens: Callable[[Settings], tuple[str, ...]]
    open_when_unset: bool


GUARDS: dict[str, Guard | None] = {
    SCORING: Guard(lambda s: split_tokens(s.api_tokens), open_when_unset=True),
    ADMIN: Guard(lambda s: (s.admin_token,) if s.admin_token else (), open_when_unset=False),
    ANALYST: None,
}


def required_tokens(settings: Settings) -> Mapping[str, tuple[str, ...]]:
    """Flask endpoint name -> the bearer tokens it accepts, for every route a bearer token
    guards (no tokens: closed); empty when no bearer token is set."""
    unknown = {e.guard for e in ENDPOINTS.values()} - {OPEN, *GUARDS}
    if unknown:  # a misspelt kind would leave its routes open
        raise ValueError(f"endpoints name guard kinds auth.GUARDS lacks: {sorted(unknown)}")
    bearer = {kind: guard for kind, guard in GUARDS.items() if guard is not None}
    tokens = {kind: guard.tokens(settings) for kind, guard in bearer.items()}
    if not any(tokens.values()):
        return {}
    guarded = {
        kind: found for kind, found in tokens.items() if found or not bearer[kind].open_when_unset
    }
    return {e.name: guarded[e.guard] for e in ENDPOINTS.values() if e.guard in guarded}


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer ...` header's value, if any."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def token_allowed(given: str | None, allowed: Iterable[str]) -> bool:
    """Constant-time comparison against every allowed token, so timing reveals nothing."""
    if given is None:
        return False
    matches = [hmac.compare_digest(given.encode(), token.encode()) for token in allowed]
    return any(matches)


def install_auth(app: Flask, required: Mapping[str, tuple[str, ...]]) -> None:
    """Check the bearer token of every guarded route (`required_tokens`); no hook without any."""
    if not required:
        return

    @app.before_request
    def check_token() -> None:
        needed = required.get(request.endpoint or "")
        given = bearer_token(request.headers.get("Authorization", ""))
        if needed is not None and not token_allowed(given, needed):
            raise Unauthorized("missing or invalid bearer token")
