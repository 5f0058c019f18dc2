"""Bearer-token checks for scoring and admin routes, installed only when tokens are set."""

import hmac
from collections.abc import Iterable

from flask import Flask, Request, request

from ..config import Settings
from ..errors import Unauthorized

SCORING = {"predict.predict", "v2.infer", "predict.feedback"}
ADMIN = {"ops.reload"}


def bearer_token(req: Request) -> str | None:
    """The token of an `Authorization: Bearer ...` header, if any."""
    scheme, _, token = req.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def token_allowed(given: str | None, allowed: Iterable[str]) -> bool:
    """Constant-time comparison against every allowed token, so timing reveals nothing."""
    if given is None:
        return False
    matches = [hmac.compare_digest(given.encode(), token.encode()) for token in allowed]
    return any(matches)


def scoring_tokens(settings: Settings) -> list[str]:
    """FRAUD_API_TOKENS, split."""
    return [t.strip() for t in settings.api_tokens.split(",") if t.strip()]


def install_auth(app: Flask, settings: Settings) -> None:
    """Guard scoring with FRAUD_API_TOKENS and admin with FRAUD_ADMIN_TOKEN.

    With neither set, auth is off (a local run) and no hook is installed at all.
    """
    api = scoring_tokens(settings)
    admin = [settings.admin_token] if settings.admin_token else []
    if not api and not admin:
        return

    @app.before_request
    def check_token() -> None:
        if request.endpoint in SCORING and api:
            needed = api
        elif request.endpoint in ADMIN:
            needed = admin  # empty when only scoring tokens are set: admin is then closed
        else:
            return
        if not token_allowed(bearer_token(request), needed):
            raise Unauthorized("missing or invalid bearer token")
