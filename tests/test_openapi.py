"""/openapi.json against the code: every route documented, and what the schemas allow is what
the service accepts and answers."""

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator

from conftest import MakeApp
from serving_helpers import transaction

INFER = "/v2/models/fraud-detector/infer"


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator for one schema of the document, its $refs resolved within the document."""
    return Draft202012Validator({**schema, "components": doc["components"]})


def body_schema(doc: dict[str, Any], path: str) -> dict[str, Any]:
    schema: dict[str, Any] = doc["paths"][path]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    return schema


def response_schema(doc: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    schema: dict[str, Any] = doc["paths"][path][method]["responses"][str(status)]["content"][
        "application/json"
    ]["schema"]
    return schema


def openapi_paths(app: Flask) -> set[tuple[str, str]]:
    """(path template, method) of every API route the app answers, in OpenAPI's spelling.

    The review pages are left out: a browser's HTML forms (CSRF-guarded, session-signed), not
    an API a client codes against."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("review."):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        routes |= {(path, m.lower()) for m in rule.methods or () if m not in {"HEAD", "OPTIONS"}}
    return routes


def test_document_covers_every_route(app: Flask, client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    documented = {
        (path, method)
        for path, item in doc["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert documented == openapi_paths(app)
    assert "text/plain" in doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]


def test_batch_prediction_matches_the_documented_200_schema(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    schema = validator(doc, response_schema(doc, "/predict", "post", 200))
    batch = client.post("/predict", json={"instances": [transaction(), transaction()]})
    single = client.post("/predict", json=transaction())
    assert batch.status_code == single.status_code == 200
    schema.validate(batch.get_json())
    schema.validate(single.get_json())


@pytest.mark.parametrize("stray", ["transaction_id", "label"])
def test_feedback_with_labels_and_a_top_level_label_is_refused(
    client: FlaskClient, stray: str
) -> None:
    body = {"labels": [{"transaction_id": "a", "label": 1}], "transaction_id": "b", "label": 0}
    del body["label" if stray == "transaction_id" else "transaction_id"]
    response = client.post("/feedback", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == stray
    doc = client.get("/openapi.json").get_json()
    schema = validator(doc, body_schema(doc, "/feedback"))
    assert not schema.is_valid(body)
    assert schema.is_valid({"labels": body["labels"]})
    assert schema.is_valid({"transaction_id": "b", "label": 0})


@pytest.mark.parametrize(
    "shape", [[], [30], [1, 30, 1], [0, 30], [1, 29], [1001, 30], [True, 30], [1.5, 30]]
)
def test_v2_shapes_the_schema_refuses_the_service_refuses(
    client: FlaskClient, shape: list[Any]
) -> None:
    doc = client.get("/openapi.json").get_json()
    schema = validator(doc, body_schema(doc, "/v2/models/{name}/infer"))
    body = {"inputs": [{"name": "input", "shape": shape, "datatype": "FP64", "data": [0.0] * 30}]}
    assert not schema.is_valid(body)
    response = client.post(INFER, json=body)
    assert 400 <= response.status_code < 500
    assert schema.is_valid({"inputs": [{**body["inputs"][0], "shape": [1, 30]}]})


def test_a_405_names_the_allowed_methods(client: FlaskClient) -> None:
    for path, allowed in (("/predict", {"POST"}), ("/health", {"GET", "HEAD"}), (INFER, {"POST"})):
        response = client.put(path)
        assert response.status_code == 405
        assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_a_401_asks_for_a_bearer_token_and_is_documented(store: Path, make_app: MakeApp) -> None:
    client = make_app(store, api_tokens="s3cret", admin_token="adm").test_client()
    doc = client.get("/openapi.json").get_json()
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for method, path, body in (
        ("post", "/predict", transaction()),
        ("post", "/feedback", {"transaction_id": "a", "label": 1}),
        ("post", "/v2/models/{name}/infer", {}),
        ("post", "/admin/reload", None),
    ):
        response = client.open(path.replace("{name}", "fraud-detector"), method=method, json=body)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        schema = validator(doc, response_schema(doc, path, method, 401))
        schema.validate(response.get_json())
        assert doc["paths"][path][method]["security"] == [{"bearer": []}]


def test_without_tokens_no_route_documents_a_401(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    assert "securitySchemes" not in doc["components"]
    for item in doc["paths"].values():
        for method, operation in item.items():
            if method != "parameters":
                assert "401" not in operation["responses"] and "security" not in operation


def test_v2_errors_have_the_protocol_shape_and_predict_errors_keep_theirs(
    client: FlaskClient,
) -> None:
    doc = client.get("/openapi.json").get_json()
    v2_error = validator(doc, {"$ref": "#/components/schemas/V2Error"})
    bad = {"inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP32", "data": [0.0]}]}
    for response in (
        client.post(INFER, json=bad),
        client.get("/v2/models/other"),
        client.get("/v2/models/fraud-detector/versions/99/ready"),
        client.get("/v2/nowhere"),
        client.put(INFER),
    ):
        assert 400 <= response.status_code < 500
        assert set(response.get_json()) == {"error"}
        v2_error.validate(response.get_json())
    predict_error = validator(doc, response_schema(doc, "/predict", "post", 400))
    response = client.post("/predict", json=transaction(V1="x"))
    predict_error.validate(response.get_json())
    assert response.get_json()["error"]["field"] == "V1"


def test_feedback_label_written_as_a_float_is_the_integer_the_schema_allows(
    client: FlaskClient,
) -> None:
    # JSON Schema's integer includes 1.0; so does the service.
    response = client.post("/feedback", json={"transaction_id": "a", "label": 1.0})
    assert response.status_code == 200
    assert client.post("/feedback", json={"transaction_id": "a", "label": 0.5}).status_code == 400


def test_v2_request_schema_accepts_what_the_service_accepts(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    schema = validator(doc, body_schema(doc, "/v2/models/{name}/infer"))
    nameless = {"inputs": [{"shape": [1, 30], "datatype": "FP64", "data": [0.0] * 30}]}
    for body in (nameless, {**nameless, "outputs": None}):
        assert schema.is_valid(body)
        assert client.post(INFER, json=body).status_code == 200
