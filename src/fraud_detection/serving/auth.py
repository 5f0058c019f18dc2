"""Bearer-token checks for scoring and admin routes (off when no tokens are configured)."""

import hmac
from collections.abc import Iterable

from flask import Request


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer ...` header, if any."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def token_allowed(given: str | None, allowed: Iterable[str]) -> bool:
    """Constant-time comparison against every allowed token, so timing reveals nothing."""
    if given is None:
        return False
    matches = [hmac.compare_digest(given.encode(), token.encode()) for token in allowed]
    return any(matches)
