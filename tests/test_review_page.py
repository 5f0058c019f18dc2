"""`/review` through Flask's test client: sign-in in each mode, CSRF, labels through the
feedback path, escaping, and error pages that never show a stack trace."""

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import select

from conftest import MakeApp
from fraud_detection.prediction_log import ensure_schema, feedback, open_engine
from fraud_detection.serving import review
from review_helpers import log_predictions, prediction
from serving_helpers import transaction

XSS = '<script>document.title="owned"</script><img src=x onerror=alert(1)>'
ANALYST = "tok-analyst-ann"
BARE = "tok-analyst-bare"
SCORING = "tok-scoring"


def _log_alerts(app: Flask) -> None:
    engine = open_engine(app.extensions["fraud"].settings.database_url)
    ensure_schema(engine)
    log_predictions(engine, [prediction("a1", 0.9), prediction(XSS, 0.8), prediction("a3", 0.7)])


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def _sign_in(client: FlaskClient, **form: str) -> Any:
    token = _csrf(client.get("/review/sign-in").text)
    return client.post("/review/sign-in", data={"csrf": token, **form})


def _queue_ids(page: str) -> list[str]:
    return re.findall(r'data-transaction="([^"]*)"', page)


@pytest.fixture
def open_app(make_app: MakeApp, store: Path) -> Flask:
    app = make_app(store)
    _log_alerts(app)
    return app


@pytest.fixture
def guarded_app(make_app: MakeApp, store: Path) -> Flask:
    app = make_app(store, analyst_tokens=f"Ann Analyst:{ANALYST}, {BARE}", api_tokens=SCORING)
    _log_alerts(app)
    return app


def test_open_page_asks_only_a_name_then_lists_the_queue(open_app: Flask) -> None:
    client = open_app.test_client()
    first = client.get("/review")
    assert first.status_code == 302 and first.location.startswith("/review/sign-in")
    assert 'name="token"' not in client.get("/review/sign-in").text
    signed = _sign_in(client, name="Ann", next="/review")
    assert signed.status_code == 303 and signed.location == "/review"
    page = client.get("/review")
    assert page.status_code == 200
    assert _queue_ids(page.text) == ["a1", str(escape(XSS)), "a3"]
    assert "<script>document" not in page.text and "<img src=x" not in page.text
    assert re.search(r'data-alerts="3" data-reviewed="0" data-left="3"', page.text)


def test_session_cookie_is_httponly_strict_and_secure_over_https(open_app: Flask) -> None:
    plain = _sign_in(open_app.test_client(), name="Ann").headers["Set-Cookie"]
    assert "HttpOnly" in plain and "SameSite=Strict" in plain and "Path=/review" in plain
    assert "Secure" not in plain
    https = open_app.test_client()
    token = _csrf(https.get("/review/sign-in", base_url="https://localhost").text)
    signed = https.post(
        "/review/sign-in", data={"csrf": token, "name": "Ann"}, base_url="https://localhost"
    )
    assert "Secure" in signed.headers["Set-Cookie"]


def test_a_decision_is_stored_through_feedback_and_leaves_the_queue(
    make_app: MakeApp, store: Path, database_url: str
) -> None:
    open_app = make_app(store, database_url=database_url)
    _log_alerts(open_app)
    client = open_app.test_client()
    _sign_in(client, name="Ann")
    page = client.get("/review").text
    first = re.findall(r"/review/alerts/(\d+)", page)[0]
    alert_page = client.get(f"/review/alerts/{first}").text
    done = client.post(
        f"/review/alerts/{first}/label", data={"csrf": _csrf(alert_page), "label": "fraud"}
    )
    assert done.status_code == 303 and re.fullmatch(r"/review/alerts/\d+", done.location)
    engine = open_engine(open_app.extensions["fraud"].settings.database_url)
    with engine.connect() as conn:
        assert conn.execute(select(feedback.c.transaction_id, feedback.c.label)).all() == [
            ("a1", 1)
        ]
    after = client.get("/review").text
    assert "a1" not in _queue_ids(after) and len(_queue_ids(after)) == 2
    assert re.search(r'data-alerts="3" data-reviewed="1" data-left="2"', after)


def test_forms_without_their_csrf_token_are_refused(open_app: Flask) -> None:
    client = open_app.test_client()
    _sign_in(client, name="Ann")
    first = re.findall(r"/review/alerts/(\d+)", client.get("/review").text)[0]
    for form in ({"label": "fraud"}, {"label": "fraud", "csrf": "forged"}):
        refused = client.post(f"/review/alerts/{first}/label", data=form)
        assert refused.status_code == 400 and "CSRF" in refused.text
    assert client.post("/review/sign-in", data={"name": "Eve"}).status_code == 400


def test_an_xss_id_is_text_on_its_alert_page(open_app: Flask) -> None:
    client = open_app.test_client()
    _sign_in(client, name="Ann")
    page = client.get("/review", query_string={"q": "<script>"}).text
    [alert_id] = re.findall(r"/review/alerts/(\d+)", page)[:1]
    alert = client.get(f"/review/alerts/{alert_id}")
    assert alert.status_code == 200
    assert "&lt;script&gt;document.title" in alert.text and "<script>document" not in alert.text
    assert "script-src 'self'" in alert.headers["Content-Security-Policy"]


def test_analyst_tokens_open_the_page_and_scoring_tokens_do_not(guarded_app: Flask) -> None:
    client = guarded_app.test_client()
    assert client.get("/review").status_code == 302
    refused = _sign_in(client, token=SCORING, name="Mallory")
    assert refused.status_code == 401 and "not an analyst token" in refused.text
    assert client.get("/review").status_code == 302
    assert _sign_in(client, token=BARE, name="").status_code == 400  # a bare token needs a name
    signed = _sign_in(client, token=ANALYST, name="someone else")
    assert signed.status_code == 303
    page = client.get("/review").text
    assert "Ann Analyst" in page and "someone else" not in page  # the token names its analyst


def test_analyst_tokens_do_not_score(guarded_app: Flask) -> None:
    client = guarded_app.test_client()
    for token, status in ((ANALYST, 401), (BARE, 401), (SCORING, 200)):
        headers = {"Authorization": f"Bearer {token}"}
        assert client.post("/predict", json=transaction(), headers=headers).status_code == status


def test_signed_out_forms_are_refused(guarded_app: Flask) -> None:
    client = guarded_app.test_client()
    token = _csrf(client.get("/review/sign-in").text)
    refused = client.post("/review/undo", data={"csrf": token})
    assert refused.status_code == 401 and "Sign in" in refused.text


def test_page_is_closed_when_other_tokens_are_set_but_no_analyst_token(
    make_app: MakeApp, store: Path
) -> None:
    client = make_app(store, api_tokens=SCORING).test_client()
    closed = client.get("/review")
    assert closed.status_code == 403 and "FRAUD_ANALYST_TOKENS" in closed.text


def test_sign_in_sends_back_to_this_site_only(open_app: Flask) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/review/../predict"):
        signed = _sign_in(open_app.test_client(), name="Ann", next=target)
        assert signed.location == "/review", target


def test_bad_filters_answer_a_page_naming_them(open_app: Flask) -> None:
    client = open_app.test_client()
    _sign_in(client, name="Ann")
    for query, field in (("status=maybe", "status"), ("day=yesterday", "day"), ("page=0", "page")):
        page = client.get(f"/review?{query}")
        assert page.status_code == 400 and field in page.text
        assert page.content_type.startswith("text/html")
    assert client.get("/review/alerts/999999").status_code == 404


def test_no_stack_trace_reaches_the_page(open_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    client = open_app.test_client()
    _sign_in(client, name="Ann")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals at line 42")

    monkeypatch.setattr(review, "queue_page", broken)
    page = client.get("/review")
    assert page.status_code == 500
    assert "secret internals" not in page.text and "Traceback" not in page.text
    assert page.content_type.startswith("text/html")


def test_a_down_database_answers_503_in_a_page(make_app: MakeApp, store: Path) -> None:
    client = make_app(store, database_url="postgresql://nobody@127.0.0.1:1/none").test_client()
    _sign_in(client, name="Ann")
    page = client.get("/review")
    assert page.status_code == 503 and "prediction log is unavailable" in page.text


def test_undo_takes_the_last_decision_back(open_app: Flask) -> None:
    client = open_app.test_client()
    _sign_in(client, name="Ann")
    first = re.findall(r"/review/alerts/(\d+)", client.get("/review").text)[0]
    page = client.get(f"/review/alerts/{first}").text
    client.post(f"/review/alerts/{first}/label", data={"csrf": _csrf(page), "label": "legit"})
    assert "a1" not in _queue_ids(client.get("/review").text)
    undone = client.post("/review/undo", data={"csrf": _csrf(page)})
    assert undone.status_code == 303 and undone.location == f"/review/alerts/{first}"
    assert "Took back the label of a1" in client.get(undone.location).text
    assert _queue_ids(client.get("/review").text)[0] == "a1"
    again = client.post("/review/undo", data={"csrf": _csrf(page)})
    assert again.location == "/review" and "Nothing to undo" in client.get("/review").text
