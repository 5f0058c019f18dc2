"""The /predict fast path (serving/fast_path.py) answers exactly as Flask's view does: the same
status, headers and bytes, scoring and logging each row once, and refusing a bad body with
Flask's error answer after decoding it once; what it does not take reaches Flask untouched."""

import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.test import Client, EnvironBuilder, run_wsgi_app

from conftest import MakeApp
from serving_helpers import sample, scored, transaction
from waiting import wait_for

JSON = "application/json"
FLAGGED = transaction(V14=-12.0, V17=-10.0, V12=-9.0, V10=-8.0)


def _body(value: object) -> bytes:
    return json.dumps(value).encode()


# (name, path, content type, body): every one carries its ids, so both answers are the same bytes.
TAKEN = [
    ("one", "/predict", JSON, _body(transaction(transaction_id="t-one"))),
    ("charset", "/predict", f"{JSON}; charset=utf-8", _body(transaction(transaction_id="t-cs"))),
    ("extra fields", "/predict", JSON, _body(transaction(transaction_id="t-x", mcc=5411))),
    (
        "batch",
        "/predict",
        JSON,
        _body({"instances": [transaction(transaction_id=f"t-b{i}") for i in range(3)]}),
    ),
    ("explained", "/predict", JSON, _body({**FLAGGED, "transaction_id": "t-e", "explain": True})),
    (
        "event time",
        "/predict",
        JSON,
        _body(transaction(transaction_id="t-et", event_time="2026-12-01T10:00:00Z")),
    ),
]
REFUSED = [
    ("not JSON", "/predict", JSON, b"{not json"),
    ("NaN", "/predict", JSON, json.dumps(transaction()).replace("42.5", "NaN").encode()),
    ("missing field", "/predict", JSON, _body({"V1": 1.0})),
    ("lone surrogate", "/predict", JSON, _body(transaction(transaction_id="\ud800"))),
    ("huge integer", "/predict", JSON, b'{"V1": ' + b"9" * 5000 + b"}"),
    ("beyond float32", "/predict", JSON, _body(transaction(V2=1e39))),
    ("explain not a boolean", "/predict", JSON, _body({**transaction(), "explain": "yes"})),
    ("empty batch", "/predict", JSON, _body({"instances": []})),
    ("a list", "/predict", JSON, b"[1, 2]"),
    ("empty", "/predict", JSON, b""),
]
ELSEWHERE = [
    ("query", "/predict?explain=true", JSON, _body(transaction(transaction_id="t-q"))),
    ("text", "/predict", "text/plain", _body(transaction())),
    ("trailing slash", "/predict/", JSON, _body(transaction())),
    ("feedback", "/feedback", JSON, _body({"transaction_id": "t-one", "label": 1})),
]


def _answer(app: Callable[..., Iterable[bytes]], builder: EnvironBuilder) -> tuple[Any, ...]:
    response = Client(app).open(builder.get_environ())
    return response.status, sorted(response.headers.items()), response.get_data()


def _request(path: str, content_type: str, body: bytes, **headers: str) -> EnvironBuilder:
    return EnvironBuilder(
        path=path, method="POST", data=body, content_type=content_type, headers=headers
    )


class _Counting:
    """The Flask app behind the fast path, counting what reaches it."""

    def __init__(self, flask: Callable[..., Iterable[bytes]]) -> None:
        self.flask = flask
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.calls += 1
        return self.flask(environ, start_response)


@pytest.fixture
def fast_app(make_app: MakeApp, store: Path) -> tuple[Flask, _Counting]:
    app = make_app(store)
    counting = _Counting(app.wsgi_app.flask)  # type: ignore[attr-defined]
    app.wsgi_app.flask = counting  # type: ignore[attr-defined]
    return app, counting


def _both_ways(
    fast_app: tuple[Flask, "_Counting"], path: str, content_type: str, body: bytes
) -> tuple[tuple[Any, ...], int, tuple[Any, ...]]:
    """The answer through the app, how often that reached Flask, and Flask's own answer."""
    app, counting = fast_app
    fast = _answer(app, _request(path, content_type, body))
    calls = counting.calls
    return fast, calls, _answer(counting.flask, _request(path, content_type, body))


def _logged(tmp_path: Path, ids: list[str]) -> dict[str, int]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'predictions.db'}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT transaction_id, COUNT(*) FROM predictions GROUP BY transaction_id")
            ).all()
    except sa.exc.OperationalError:  # no table before the first write
        return {}
    finally:
        engine.dispose()
    return {tid: n for tid, n in rows if tid in ids}


@pytest.mark.parametrize(("name", "path", "content_type", "body"), TAKEN, ids=[t[0] for t in TAKEN])
def test_a_common_request_is_answered_here_with_flasks_bytes_scored_and_logged_once(
    fast_app: tuple[Flask, _Counting],
    tmp_path: Path,
    name: str,
    path: str,
    content_type: str,
    body: bytes,
) -> None:
    before = scored("1", "champion")
    fast, calls, flask = _both_ways(fast_app, path, content_type, body)
    assert calls == 0, "the fast path handed it to Flask"
    assert fast == flask
    assert fast[0] == "200 OK"
    answer = json.loads(fast[2])
    ids = [p["transaction_id"] for p in answer.get("predictions", [answer])]
    assert scored("1", "champion") - before == 2 * len(ids)
    if name == "explained":
        assert answer["is_fraud"] and answer["explanation"]
    logged = wait_for(lambda: len(_logged(tmp_path, ids)) == len(ids) and _logged(tmp_path, ids))
    assert logged == {tid: 2 for tid in ids}  # one row per request: fast path, then Flask


def _errors() -> float:
    return sum(
        sample("fraud_request_errors_total", endpoint="predict", reason=reason)
        for reason in ("invalid_request", "invalid_field", "too_large")
    )


@pytest.mark.parametrize(
    ("name", "path", "content_type", "body"), REFUSED, ids=[t[0] for t in REFUSED]
)
def test_a_refused_body_is_decoded_once_and_answered_with_flasks_error(
    fast_app: tuple[Flask, _Counting], name: str, path: str, content_type: str, body: bytes
) -> None:
    before, errors = scored("1", "champion"), _errors()
    fast, calls, flask = _both_ways(fast_app, path, content_type, body)
    assert calls == 0, "the fast path handed it to Flask"
    assert fast == flask
    assert fast[0].startswith("4")
    assert _errors() - errors == 2  # once each way: Flask alone counted one
    assert scored("1", "champion") == before


@pytest.mark.parametrize(
    ("name", "path", "content_type", "body"), ELSEWHERE, ids=[t[0] for t in ELSEWHERE]
)
def test_anything_else_reaches_flask_untouched_and_is_answered_as_there(
    fast_app: tuple[Flask, _Counting], name: str, path: str, content_type: str, body: bytes
) -> None:
    before = scored("1", "champion")
    fast, calls, flask = _both_ways(fast_app, path, content_type, body)
    assert calls == 1
    if name == "query":  # scored twice: the generated ids are the only difference
        assert fast[0] == flask[0] == "200 OK"
        assert scored("1", "champion") - before == 2
        return
    assert fast == flask
    assert fast[0].startswith("2" if name == "feedback" else "4")
    assert scored("1", "champion") == before


def test_a_failure_while_scoring_is_flasks_500_logged_and_counted_once(
    fast_app: tuple[Flask, _Counting],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, counting = fast_app
    plane = app.extensions["fraud"]

    def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(plane, "predict", broken)
    body = _body(transaction(transaction_id="t-bug"))
    before = sample("fraud_request_errors_total", endpoint="predict", reason="internal")
    fast = _answer(app, _request("/predict", JSON, body))
    assert counting.calls == 0
    assert sample("fraud_request_errors_total", endpoint="predict", reason="internal") == before + 1
    logged = [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    assert logged == ["a bug"]
    flask = _answer(counting.flask, _request("/predict", JSON, body))
    assert fast == flask
    assert fast[0].startswith("500")


class _Broken:
    def read(self, *_: object) -> bytes:
        raise OSError("timed out")


@pytest.mark.parametrize("stream", ["broken", "short"])
def test_a_body_that_cannot_be_read_whole_is_flasks_400(
    fast_app: tuple[Flask, _Counting], stream: str
) -> None:
    app, counting = fast_app
    body = _body(transaction())
    answers = []
    for wsgi in (app, counting.flask):
        environ = _request("/predict", JSON, body).get_environ()
        # As gunicorn hands it over: werkzeug then reads the stream itself, not a wrapper.
        given = _Broken() if stream == "broken" else io.BytesIO(body[:100])
        environ.update({"wsgi.input": given, "wsgi.input_terminated": True})
        answer, status, _ = run_wsgi_app(wsgi, environ)
        answers.append((status, b"".join(answer)))
    assert answers[0] == answers[1]
    assert answers[0][0].startswith("400")
    if stream == "short":
        message = json.loads(answers[0][1])["error"]["message"]
        assert message == f"body ends after 100 of its {len(body)} bytes (Content-Length)"
    assert counting.calls == 1


def test_a_guarded_predict_takes_the_fast_path_only_with_its_token(
    make_app: MakeApp, store: Path
) -> None:
    app = make_app(store, api_tokens="s3cret,other")
    counting = _Counting(app.wsgi_app.flask)  # type: ignore[attr-defined]
    app.wsgi_app.flask = counting  # type: ignore[attr-defined]
    body = _body(transaction(transaction_id="t-auth"))
    cases = [
        ({}, 401, 1),
        ({"Authorization": "Bearer wrong"}, 401, 2),
        ({"Authorization": "Basic s3cret"}, 401, 3),
        ({"Authorization": "Bearer other"}, 200, 3),
        ({"Authorization": "bearer  s3cret "}, 200, 3),
    ]
    for headers, status, calls in cases:
        response = Client(app).open(_request("/predict", JSON, body, **headers).get_environ())
        assert response.status_code == status, headers
        assert counting.calls == calls, headers
