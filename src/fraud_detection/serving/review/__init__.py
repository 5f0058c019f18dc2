"""`/review`: the analysts' alert queue, server-rendered, with one key per decision.

The queue lists open alerts in the review policy's order; an alert's page shows its features,
its explanation and its labels. A decision is stored through the data plane's feedback, the
path /feedback takes, as a `review` label with the reviewer's name; Undo takes the reviewer's
last one back. Every answer is HTML: errors too, and never with a stack trace.
"""

import logging
import posixpath
from datetime import date
from typing import Any, cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest, Forbidden, HTTPException, NotFound, Unauthorized

from ...config import Settings
from ...errors import PredictionLogError, RequestError
from ...log_record import LabelRecord
from ...prediction_log import utc_now
from ...schema import FEATURES
from ...sql_sink import SqlSink
from ..context import current_plane
from ..endpoints import route
from ..http_errors import refusal
from . import access
from .chart import explanation_chart
from .queries import (
    PAGE_SIZE,
    REVIEW,
    QueueFilter,
    alert_for,
    day_counts,
    neighbour,
    queue_page,
    read_alert,
    undo_last,
)

log = logging.getLogger(__name__)
bp = Blueprint(
    "review",
    __name__,
    url_prefix="/review",
    template_folder="templates",
    static_folder="static",
)
LABELS = {"fraud": 1, "legit": 0}
STATUSES = ("open", "reviewed", "all")
MAX_PAGE = 10_000
# Scripts and styles from this origin only (the page has no inline script to allow), no
# framing, forms posting back here only.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def install_review(app: Flask, settings: Settings) -> None:
    """Serve /review with this service's analyst tokens."""
    analysts = access.read_analysts(settings)
    app.extensions["fraud_analysts"] = analysts
    access.install_session(app, settings, analysts)
    app.register_blueprint(bp)


def _analysts() -> access.Analysts:
    found: access.Analysts = current_app.extensions["fraud_analysts"]
    return found


@bp.before_request
def guard() -> Any:
    """Closed, signed out, or a form without its CSRF token: refused before any view runs."""
    if request.endpoint == "review.static":
        return None
    analysts = _analysts()
    if analysts.closed:
        raise Forbidden(
            "The review page is closed: this service requires tokens for scoring or admin, "
            "and FRAUD_ANALYST_TOKENS sets none for analysts."
        )
    if request.method == "POST" and not access.csrf_valid(request.form.get("csrf")):
        raise BadRequest("This form has expired (its CSRF token is missing or stale): reload.")
    if request.endpoint == "review.sign_in" or access.reviewer() is not None:
        return None
    if request.method == "GET":
        return redirect(url_for("review.sign_in", next=request.full_path.rstrip("?")))
    raise Unauthorized("Sign in first.")


@bp.after_request
def security_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    return {"csrf_token": access.csrf_token, "reviewer": access.reviewer}


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Any:
    return _error_page(exc.code or 500, exc.name, exc.description or "")


@bp.errorhandler(Exception)
def unexpected(exc: Exception) -> Any:
    if isinstance(exc, PredictionLogError):
        log.warning("review: %s", exc)
        return _error_page(503, "Unavailable", "The prediction log is unavailable; retry shortly.")
    if isinstance(exc, RequestError):
        refused = refusal(exc)
        if refused.status >= 500:
            log.warning("review: %s", exc)
        title = "Unavailable" if refused.status >= 500 else "Refused"
        return _error_page(refused.status, title, refused.message)
    log.exception("review: unhandled error")
    return _error_page(500, "Internal error", "Something went wrong; it has been logged.")


def _error_page(status: int, title: str, message: str) -> Any:
    return render_template("review/error.html", status=status, title=title, message=message), status


def _queue_filter(values: "MultiDict[str, str]") -> QueueFilter:
    """The queue's filters from a query string or a form; a bad one is a 400 naming it."""
    status = values.get("status") or "open"
    if status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}.")
    day = None
    if values.get("day"):
        try:
            day = date.fromisoformat(values["day"])
        except ValueError:
            raise BadRequest("day must be a date like 2026-01-31.") from None
    version = (values.get("version") or "").strip()
    search = (values.get("q") or "").strip()
    if len(version) > 32 or len(search) > 128:
        raise BadRequest("version takes at most 32 characters, q at most 128.")
    return QueueFilter(status, day, version or None, search or None)  # type: ignore[arg-type]


def _filter_args(where: QueueFilter) -> dict[str, Any]:
    """The filters as query arguments, defaults left out."""
    args = {
        "status": where.status if where.status != "open" else "",
        "day": where.day.isoformat() if where.day else "",
        "version": where.version or "",
        "q": where.search or "",
    }
    return {k: v for k, v in args.items() if v}


def _engine() -> Any:
    # The review queue's queries are SQL: it runs on the SQL sink's database.
    return cast(SqlSink, current_plane().prediction_log.sink).ready_engine()


def _today_counts(where: QueueFilter) -> Any:
    return day_counts(_engine(), where.day or utc_now().date())


@route(bp)
def queue() -> Any:
    """The queue: open alerts, highest score first, a page at a time."""
    where = _queue_filter(request.args)
    try:
        page = int(request.args.get("page") or 1)
    except ValueError:
        raise BadRequest("page must be a whole number.") from None
    if not 1 <= page <= MAX_PAGE:
        raise BadRequest(f"page must be between 1 and {MAX_PAGE}.")
    found = queue_page(_engine(), where, page)
    args = _filter_args(where)
    return render_template(
        "review/queue.html",
        page=found,
        where=where,
        args=args,
        counts=_today_counts(where),
        first_rank=(page - 1) * PAGE_SIZE + 1,
        page_url=lambda n: url_for("review.queue", page=n, **args),
        alert_url=lambda alert_id: url_for("review.alert", alert_id=alert_id, **args),
    )


@route(bp)
def alert(alert_id: int) -> Any:
    """One alert: its decision buttons, explanation, features and labels."""
    where = _queue_filter(request.args)
    engine = _engine()
    found = read_alert(engine, alert_id)
    if found is None:
        raise NotFound(f"No alert has the id {alert_id}.")
    args = _filter_args(where)
    near = {
        name: neighbour(engine, where, found.row, after)
        for name, after in (("next", True), ("previous", False))
    }
    return render_template(
        "review/alert.html",
        alert=found,
        chart=explanation_chart(found.explanation),
        features=FEATURES,
        args=args,
        counts=_today_counts(where),
        queue_url=url_for("review.queue", **args),
        near={
            name: url_for("review.alert", alert_id=i, **args) if i is not None else None
            for name, i in near.items()
        },
    )


@route(bp)
def label(alert_id: int) -> Any:
    """Store the reviewer's decision, as /feedback stores labels, then show the next alert."""
    where = _queue_filter(request.form)
    decision = request.form.get("label", "")
    if decision not in LABELS:
        raise BadRequest("label must be fraud or legit.")
    engine = _engine()
    found = read_alert(engine, alert_id)
    if found is None:
        raise NotFound(f"No alert has the id {alert_id}.")
    tid = found.row.transaction_id
    reviewer = access.reviewer()
    current_plane().feedback([LabelRecord(tid, LABELS[decision], REVIEW, reviewer=reviewer)])
    flash(f"{tid} labelled {'fraud' if LABELS[decision] else 'legitimate'}.")
    following = neighbour(engine, where, found.row, after=True)
    args = _filter_args(where)
    if following is None:
        return redirect(url_for("review.queue", **args), 303)
    return redirect(url_for("review.alert", alert_id=following, **args), 303)


@route(bp)
def undo() -> Any:
    """Take back this reviewer's last label and show its alert again."""
    where = _queue_filter(request.form)
    args = _filter_args(where)
    engine = _engine()
    name = access.reviewer()
    assert name is not None  # the guard let no one else in
    tid = undo_last(engine, name)
    if tid is None:
        flash("Nothing to undo.")
        return redirect(url_for("review.queue", **args), 303)
    flash(f"Took back the label of {tid}.")
    alert_id = alert_for(engine, tid)
    if alert_id is None:
        return redirect(url_for("review.queue", **args), 303)
    return redirect(url_for("review.alert", alert_id=alert_id, **args), 303)


@route(bp)
def sign_in() -> Any:
    """Ask for a token (when analyst tokens are set) and a name; then start a session."""
    analysts = _analysts()
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("review/sign_in.html", analysts=analysts, next=target)
    name: str | None = request.form.get("name", "")
    if analysts.tokens:
        ok, bound = analysts.check(request.form.get("token", ""))
        if not ok:
            message = "That is not an analyst token."
            return _sign_in_again(analysts, target, message, 401)
        name = bound or name
    name = access.valid_name(name or "")
    if name is None:
        message = f"Give your name (at most {access.REVIEWER_MAX} printable characters)."
        return _sign_in_again(analysts, target, message, 400)
    access.sign_in(name)
    return redirect(target, 303)


def _sign_in_again(analysts: access.Analysts, target: str, message: str, status: int) -> Any:
    page = render_template("review/sign_in.html", analysts=analysts, next=target, error=message)
    return page, status


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path under /review only, never another site."""
    if not target or "\\" in target:
        return url_for("review.queue")
    parts = urlsplit(target)
    path = parts.path
    inside = path == "/review" or path.startswith("/review/")
    if parts.scheme or parts.netloc or not inside or posixpath.normpath(path) != path:
        return url_for("review.queue")
    return target


@route(bp)
def sign_out() -> Any:
    access.sign_out()
    return redirect(url_for("review.sign_in"), 303)
