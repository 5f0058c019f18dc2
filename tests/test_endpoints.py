"""One endpoint table: the routes the app answers are exactly its entries, auth guards by it,
and a guard kind is one entry in auth.GUARDS."""

from pathlib import Path

import pytest
from flask import Flask

from conftest import MakeApp
from fraud_detection.config import Settings
from fraud_detection.serving import auth
from fraud_detection.serving.endpoints import ENDPOINTS, Endpoint, inline_paths
from serving_helpers import transaction


def test_the_app_answers_exactly_the_routes_of_the_table(app: Flask) -> None:
    routes = {
        (rule.endpoint, rule.rule, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }
    table = {
        (e.name, path, method)
        for e in ENDPOINTS.values()
        for path in e.paths
        for method in e.methods
    }
    assert routes == table


def test_a_new_guard_kind_is_one_entry_and_guards_the_routes_that_name_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    audit = Endpoint("ops.audit", ("/audit",), guard="auditor")
    monkeypatch.setitem(ENDPOINTS, audit.name, audit)
    settings = Settings(api_tokens="s")
    # Before its guard kind exists, a route naming it is refused: it would be left open.
    with pytest.raises(ValueError, match="auditor"):
        auth.required_tokens(settings)
    auditor = auth.Guard(lambda s: ("a1", "a2"), open_when_unset=False)
    monkeypatch.setitem(auth.GUARDS, "auditor", auditor)
    required = auth.required_tokens(settings)
    assert required["ops.audit"] == ("a1", "a2")
    assert required["predict.predict"] == ("s",)
    # The review pages' kind is checked by their own signed session, never a bearer token.
    assert not any(name.startswith("review.") for name in required)


def test_without_any_token_no_route_is_guarded() -> None:
    assert auth.required_tokens(Settings()) == {}


def test_the_document_marks_exactly_the_guarded_routes(store: Path, make_app: MakeApp) -> None:
    # Scoring tokens only: admin is closed, so guarded too; open routes never are.
    client = make_app(store, api_tokens="s3cret").test_client()
    doc = client.get("/openapi.json").get_json()
    secured = {
        (path, method)
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if method != "parameters" and "security" in operation
    }
    assert secured == {
        ("/predict", "post"),
        ("/feedback", "post"),
        ("/admin/reload", "post"),
        ("/v2/models/{name}/infer", "post"),
        ("/v2/models/{name}/versions/{version}/infer", "post"),
    }
    token = {"Authorization": "Bearer s3cret"}
    assert client.post("/admin/reload", headers=token).status_code == 401
    assert client.post("/predict", json=transaction(), headers=token).status_code == 200


def test_the_worker_answers_in_its_loop_only_the_scoring_routes() -> None:
    """Routes that may wait on the database or S3 must keep their threads."""
    paths = inline_paths()
    for scoring in (b"/predict", b"/v2/models/m/infer", b"/v2/models/m/versions/3/infer"):
        assert paths.fullmatch(scoring), scoring
    for other in (b"/feedback", b"/admin/reload", b"/metrics", b"/review", b"/predict/x"):
        assert not paths.fullmatch(other), other
