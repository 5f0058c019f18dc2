"""Who may open /review: analyst tokens (FRAUD_ANALYST_TOKENS), the signed session cookie a
sign-in gives, and the CSRF token every form carries.

Three modes. With analyst tokens set, an analyst signs in with one. With no token of any kind
set (a local run), the page is open, as scoring is, and asks only for a name. With scoring or
admin tokens set but no analyst token, it is closed: labels must not be writable without a
token where /feedback needs one. Scoring tokens never open the page, and analyst tokens never
score (auth.py checks scoring against FRAUD_API_TOKENS only).
"""

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from flask import Flask, Request, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from ...config import Settings
from .. import auth

SESSION_HOURS = 12
"""A signed-in session lasts a working day from its last request."""
REVIEWER_MAX = 128  # feedback.reviewer's width


@dataclass(frozen=True)
class Analysts:
    """The configured analyst tokens, each with the name it binds (None: the analyst says)."""

    tokens: dict[str, str | None] = field(default_factory=dict)
    closed: bool = False
    """No analyst token while other tokens are set: nobody may open the page."""

    @property
    def open(self) -> bool:
        return not self.tokens and not self.closed

    def check(self, given: str) -> tuple[bool, str | None]:
        """Whether `given` is an analyst token, and the name it binds; constant time."""
        matches = [
            (hmac.compare_digest(given.encode(), token.encode()), name)
            for token, name in self.tokens.items()
        ]
        found = [name for ok, name in matches if ok]
        return (True, found[0]) if found else (False, None)


def read_analysts(settings: Settings) -> Analysts:
    """FRAUD_ANALYST_TOKENS: comma-separated `token` or `name:token` entries."""
    tokens: dict[str, str | None] = {}
    for entry in settings.analyst_tokens.split(","):
        name, _, token = entry.strip().rpartition(":")
        if token.strip():
            tokens[token.strip()] = name.strip() or None
    return Analysts(tokens, closed=not tokens and bool(auth.required_tokens(settings)))


def session_key(settings: Settings, analysts: Analysts) -> bytes:
    """The key that signs session cookies, the same in every worker and replica.

    With tokens it derives from all of them (one analyst knows only their own, so cannot sign
    a session in another's name; changing any token signs everyone out). Open, it is a random
    key kept in the serving cache, created once by whichever worker comes first.
    """
    if analysts.tokens:
        secret = "\0".join(sorted(analysts.tokens)).encode()
        return hmac.new(secret, b"fraud-detection review session", hashlib.sha256).digest()
    return _stored_key(settings.serving_cache / "review-session.key")


def _stored_key(path: Path) -> bytes:
    """A 32-byte random key in `path`, made atomically (written aside, then linked) if absent."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    aside.write_bytes(secrets.token_bytes(32))
    aside.chmod(0o600)
    try:
        os.link(aside, path)  # fails if another worker's key got there first: use that one
    except FileExistsError:
        pass
    finally:
        aside.unlink()
    return path.read_bytes()


class ReviewSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, Secure whenever the request came over HTTPS.

    Under gunicorn a request is HTTPS when it was, or when a proxy at an address in
    FORWARDED_ALLOW_IPS (default 127.0.0.1) says so with X-Forwarded-Proto: https.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        # Only the review page has sessions: scoring requests skip the cookie and signer
        # (about a fifth of a legitimate /predict's time in the worker).
        if not request.path.startswith("/review"):
            return None
        return super().open_session(app, request)


def install_session(app: Flask, settings: Settings, analysts: Analysts) -> None:
    """Sign the review page's session cookie; it is sent to /review only."""
    app.secret_key = session_key(settings, analysts)
    app.session_interface = ReviewSessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="fraud_review",
        SESSION_COOKIE_PATH="/review",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )


def sign_in(reviewer: str) -> None:
    """Start a session for `reviewer`, with a fresh CSRF token."""
    session.clear()
    session.permanent = True
    session["reviewer"] = reviewer
    session["csrf"] = secrets.token_urlsafe(32)


def sign_out() -> None:
    session.clear()


def reviewer() -> str | None:
    """The signed-in reviewer's name."""
    name = session.get("reviewer")
    return name if isinstance(name, str) else None


def csrf_token() -> str:
    """This session's CSRF token (made on first use: the sign-in form carries one too)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


def csrf_valid(given: str | None) -> bool:
    expected = session.get("csrf")
    if not isinstance(expected, str) or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def valid_name(name: str) -> str | None:
    """A reviewer name as labels store it; None when empty, too long or not printable."""
    name = " ".join(name.split())
    if not name or len(name) > REVIEWER_MAX or not name.isprintable():
        return None
    return name
