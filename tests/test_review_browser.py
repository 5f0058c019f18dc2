"""The review page in a real browser: Debian's Chromium driven by Playwright, against the live
gunicorn service after a `fraud simulate` replay, with analyst and scoring tokens set.

Playwright only drives /usr/bin/chromium here: it never downloads a browser. With
REVIEW_SCREENSHOTS=<folder> the queue and an alert's page are saved there (docs/ keeps them).
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page
from sqlalchemy import Engine, select

from browser_helpers import chromium
from fraud_detection.prediction_log import feedback, label_history, open_engine, predictions
from fraud_detection.review_policy import Alert, queue_key
from serving_helpers import serve, train_into, transaction
from waiting import wait_for

pytestmark = pytest.mark.long

ANALYST_TOKEN = "tok-analyst-ann-0f3a"
ANALYST = "Ann Analyst"
SCORING_TOKEN = "tok-scoring-77c1"
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
# A transaction pushed far along the components synthetic frauds move (data.make_synthetic).
FRAUD_LIKE = {"V14": -9.0, "V17": -8.0, "V12": -7.0, "V10": -6.0, "V4": 6.0, "Amount": 420.0}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The service with analyst and scoring tokens, a synthetic replay through it with no
    labels sent, and one flagged transaction whose id is an XSS attempt."""
    tmp = tmp_path_factory.mktemp("review-browser")
    store = tmp / "store"
    train_into(store, promote=True)
    tokens = {
        "FRAUD_ANALYST_TOKENS": f"{ANALYST}:{ANALYST_TOKEN}",
        "FRAUD_API_TOKENS": SCORING_TOKEN,
    }
    with serve(store, tmp, **tokens) as url:
        replay = subprocess.run(
            [sys.executable, "-m", "fraud_detection", "simulate", "--synthetic", "--url", url,
             "--token", SCORING_TOKEN, "--rate", "0", "--batch-size", "100",
             "--label-fraction", "0", "--json"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert replay.returncode == 0, replay.stderr[-3000:]
        scored = json.loads(replay.stdout)["scored"]
        answer = requests.post(
            f"{url}/predict",
            json=transaction(transaction_id=XSS, **FRAUD_LIKE),
            headers={"Authorization": f"Bearer {SCORING_TOKEN}"},
            timeout=10,
        )
        assert answer.status_code == 200 and answer.json()["is_fraud"], answer.text
        engine = open_engine(f"sqlite:///{tmp / 'predictions.db'}")
        wait_for(lambda: _logged(engine) == scored + 1, timeout=30, what="every row logged")
        yield {"url": url, "engine": engine, "tmp": tmp}


def _logged(engine: Engine) -> int:
    try:
        with engine.connect() as conn:
            return len(conn.execute(select(predictions.c.id)).all())
    except Exception:  # the writer has not created the tables yet
        return 0


def _open_alerts(engine: Engine) -> list[str]:
    """The open alerts in the review policy's order, computed here from the log's rows."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                predictions.c.transaction_id, predictions.c.probability, predictions.c.created_at
            )
            .where(predictions.c.is_fraud, predictions.c.variant != "shadow")
            .where(predictions.c.transaction_id.not_in(select(feedback.c.transaction_id)))
        ).all()
    return [a.transaction_id for a in sorted((Alert(*r) for r in rows), key=queue_key)]


def _labels(engine: Engine) -> dict[str, tuple[int, str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                feedback.c.transaction_id, feedback.c.label, feedback.c.source, feedback.c.reviewer
            )
        ).all()
    return {tid: (label, source, reviewer) for tid, label, source, reviewer in rows}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as found:
        yield found


def _signed_in(browser: Browser, url: str) -> Page:
    page = browser.new_context(base_url=url).new_page()
    page.goto("/review")
    page.fill("input[name=token]", ANALYST_TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url("**/review")
    return page


def _queue(page: Page) -> list[str]:
    return page.eval_on_selector_all(
        "#queue tbody tr", "rows => rows.map(r => r.dataset.transaction)"
    )


def _counts(page: Page) -> tuple[int, int, int]:
    found = page.eval_on_selector(
        "#counts", "c => [c.dataset.alerts, c.dataset.reviewed, c.dataset.left]"
    )
    return int(found[0]), int(found[1]), int(found[2])


def test_an_analyst_works_the_queue_by_keyboard(service: dict[str, Any], browser: Browser) -> None:
    engine = service["engine"]
    page = _signed_in(browser, service["url"])
    expected = _open_alerts(engine)
    assert len(expected) >= 5
    assert _queue(page) == expected[:50]
    alerts, reviewed, left = _counts(page)
    assert (alerts, reviewed, left) == (len(expected), 0, len(expected))
    _screenshot(page, "review-queue.png")

    page.keyboard.press("Enter")  # the cursor starts on the first row
    page.wait_for_url("**/review/alerts/*")
    assert page.inner_text("#transaction-id") == expected[0]
    assert page.locator("svg.chart rect").count() >= 1
    _screenshot(page, "review-alert.png")
    decisions = {}
    for key, label in (("f", 1), ("l", 0), ("f", 1)):
        tid = page.inner_text("#transaction-id")
        with page.expect_navigation():
            page.keyboard.press(key)
        decisions[tid] = label
    assert list(decisions) == expected[:3]
    assert page.inner_text("#transaction-id") == expected[3]

    stored = _labels(engine)
    assert {tid: stored[tid] for tid in decisions} == {
        tid: (label, "review", ANALYST) for tid, label in decisions.items()
    }
    page.goto("/review")
    assert _queue(page) == expected[3:53]
    assert _counts(page) == (len(expected), 3, len(expected) - 3)

    with page.expect_navigation():
        page.keyboard.press("Enter")  # any alert's page takes the last label back
    with page.expect_navigation():
        page.keyboard.press("u")
    assert page.inner_text("#transaction-id") == expected[2]
    assert expected[2] not in _labels(engine)
    with engine.connect() as conn:
        undone = conn.execute(
            select(label_history.c.undone_at).where(label_history.c.transaction_id == expected[2])
        ).scalar_one()
    assert undone is not None
    page.goto("/review")
    assert _queue(page) == [expected[2], *expected[3:52]]
    assert _counts(page) == (len(expected), 2, len(expected) - 2)


def test_the_page_needs_an_analyst_token(service: dict[str, Any], browser: Browser) -> None:
    page = browser.new_context(base_url=service["url"]).new_page()
    page.goto("/review")
    assert "/review/sign-in" in page.url
    for wrong in (SCORING_TOKEN, "guess"):
        page.fill("input[name=token]", wrong)
        page.fill("input[name=name]", "Mallory")
        page.click("button[type=submit]")
        assert page.inner_text(".error") == "That is not an analyst token."
        page.goto("/review")
        assert "/review/sign-in" in page.url
    signed = _signed_in(browser, service["url"])
    assert ANALYST in signed.inner_text(".who")
    [cookie] = signed.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/review"
    assert not cookie["secure"]  # plain HTTP here; behind an HTTPS proxy, see below
    scoring = requests.post(
        f"{service['url']}/predict",
        json=transaction(),
        headers={"Authorization": f"Bearer {ANALYST_TOKEN}"},
        timeout=10,
    )
    assert scoring.status_code == 401


def test_the_session_cookie_is_secure_behind_an_https_proxy(service: dict[str, Any]) -> None:
    """gunicorn trusts X-Forwarded-Proto from a proxy on 127.0.0.1 (FORWARDED_ALLOW_IPS)."""
    session = requests.Session()
    form = session.get(
        f"{service['url']}/review/sign-in", headers={"X-Forwarded-Proto": "https"}, timeout=10
    )
    assert "Secure" in form.headers["Set-Cookie"]
    assert (
        "Secure"
        not in requests.get(f"{service['url']}/review/sign-in", timeout=10).headers["Set-Cookie"]
    )


def test_an_xss_transaction_id_renders_inert(service: dict[str, Any], browser: Browser) -> None:
    page = _signed_in(browser, service["url"])
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.fill("input[name=q]", "<script>")
    with page.expect_navigation():
        page.press("input[name=q]", "Enter")
    assert _queue(page) == [XSS]
    page.click("#queue tbody tr")
    page.wait_for_url("**/review/alerts/*")
    assert page.inner_text("#transaction-id") == XSS
    assert page.evaluate("window.__xss") is None
    assert page.locator("main script, main img").count() == 0
    assert dialogs == []


def _screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("REVIEW_SCREENSHOTS")
    if folder:
        page.set_viewport_size({"width": 1100, "height": 760})
        page.screenshot(path=str(Path(folder) / name))
