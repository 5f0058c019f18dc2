"""Every documented route, asked for each answer the document lists, answers with a documented
status and a body its schema accepts: /openapi.json is checked against the real answers."""

import json
import re
from pathlib import Path
from typing import Any

import orjson
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from werkzeug.test import TestResponse

from conftest import MakeApp
from fraud_detection.registry import CANARY, Registry
from fraud_detection.schema import FEATURES
from fraud_detection.store import open_store
from serving_helpers import transaction

MODEL = "/v2/models/fraud-detector"
VERSION = "/v2/models/fraud-detector/versions/2"
TOKEN = {"Authorization": "Bearer s3cret"}


def _v2(rows: int = 1, **extra: Any) -> dict[str, Any]:
    row = [float(transaction()[name]) for name in FEATURES]  # type: ignore[arg-type]
    tensor = {"name": "input", "datatype": "FP64", "shape": [rows, len(FEATURES)]}
    return {"inputs": [{**tensor, "data": row * rows}], **extra}


def _closed(schema: Any) -> Any:
    """`schema` with every object closed to undocumented keys: an answer must say no more
    than its document (the document itself leaves them open, for clients to come)."""
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {k: _closed(v) for k, v in schema.items()}
    if "properties" in schema and "additionalProperties" not in schema:
        closed["additionalProperties"] = False
    return closed


def _template(doc: dict[str, Any], path: str) -> str:
    """The documented path template a concrete path matches."""
    for template in doc["paths"]:
        if re.fullmatch(re.sub(r"{[^}]+}", "[^/]+", template), path):
            return template
    raise AssertionError(f"{path} is not documented")


class Checker:
    """Checks answers against the document of the app that gave them; records what it saw."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str, str]] = set()

    def check(self, client: FlaskClient, method: str, path: str, **kwargs: Any) -> TestResponse:
        doc = client.get("/openapi.json").get_json()
        response = client.open(path, method=method, **kwargs)
        template = _template(doc, path.partition("?")[0])
        operation = doc["paths"][template][method.lower()]
        status = str(response.status_code)
        assert status in operation["responses"], (method, path, status, response.data[:300])
        content = operation["responses"][status]["content"]
        media = response.mimetype
        assert media in content, (method, path, media)
        schema = content[media]["schema"]
        if media == "application/json":
            body = response.get_json()
        elif media == "application/octet-stream":
            # A binary V2 answer: its JSON header is the V2Response.
            header = int(response.headers["Inference-Header-Content-Length"])
            body, schema = (
                orjson.loads(response.data[:header]),
                content["application/json"]["schema"],
            )
        else:
            body = response.get_data(as_text=True)
        Draft202012Validator(_closed({**schema, "components": doc["components"]})).validate(body)
        self.seen.add((template, method.lower(), status))
        return response


def _documented(app: Flask) -> set[tuple[str, str, str]]:
    doc = app.test_client().get("/openapi.json").get_json()
    return {
        (path, method, status)
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
        for status in operation["responses"]
    }


def test_every_documented_answer_matches_the_document(
    make_app: MakeApp, store: Path, tmp_path: Path
) -> None:
    checker = Checker()
    # A/B on, so that V2 answers carry row_model_versions; /models shows a challenger and a
    # rollout's canary.
    Registry(open_store(str(store))).stage("2", reason="test", alias=CANARY, share=0.1)
    served = make_app(store, challenger_traffic=0.5)
    client = served.test_client()
    assert checker.check(client, "GET", "/models").get_json()["canary"]["share"] == 0.1
    for path in ("/health", "/metrics", "/openapi.json", "/v2", "/v2/health/live"):
        checker.check(client, "GET", path)
    checker.check(client, "GET", "/v2/health/ready")
    checker.check(client, "POST", "/predict", json=transaction())
    checker.check(client, "POST", "/predict?explain=true", json={"instances": [transaction()] * 3})
    checker.check(client, "POST", "/predict", json=transaction(V1="x"))
    checker.check(client, "POST", "/predict", json={"instances": [transaction()] * 1001})
    checker.check(client, "POST", "/predict", data="x", content_type="text/plain")
    checker.check(client, "POST", "/feedback", json={"transaction_id": "t", "label": 1})
    checker.check(client, "POST", "/feedback", json={"transaction_id": "t", "label": 7})
    checker.check(
        client, "POST", "/feedback", json={"labels": [{"transaction_id": "t", "label": 1}] * 1001}
    )
    checker.check(client, "POST", "/feedback", data="x", content_type="text/plain")
    checker.check(client, "POST", "/admin/reload")
    for prefix in (MODEL, VERSION):
        checker.check(client, "GET", prefix)
        checker.check(client, "GET", f"{prefix}/ready")
        checker.check(client, "POST", f"{prefix}/infer", json=_v2(40, id="req"))
        binary = _v2(2, parameters={"binary_data_output": True})
        checker.check(client, "POST", f"{prefix}/infer", json=binary)
        checker.check(client, "POST", f"{prefix}/infer", json=_v2(1, id=7))
        checker.check(client, "POST", f"{prefix}/infer", json=_v2(1001))
        checker.check(client, "POST", f"{prefix}/infer", data="x", content_type="text/plain")
        other = prefix.replace("fraud-detector", "other")
        for suffix in ("", "/ready", "/infer"):
            method = "POST" if suffix == "/infer" else "GET"
            checker.check(client, method, f"{other}{suffix}", json=_v2())
    for suffix in ("", "/ready"):
        checker.check(client, "GET", f"/v2/models/fraud-detector/versions/9{suffix}")

    # No model yet: every route that needs one answers 503.
    empty = make_app(tmp_path / "empty", serving_cache=tmp_path / "empty-cache").test_client()
    checker.check(empty, "GET", "/health")
    checker.check(empty, "GET", "/v2/health/ready")
    checker.check(empty, "POST", "/predict", json=transaction())
    checker.check(empty, "POST", "/admin/reload")
    for prefix in (MODEL, VERSION):
        for suffix in ("", "/ready"):
            checker.check(empty, "GET", f"{prefix}{suffix}")
        checker.check(empty, "POST", f"{prefix}/infer", json=_v2())

    # The prediction log down: feedback answers 503.
    down = make_app(store, database_url="postgresql://nobody@127.0.0.1:1/none").test_client()
    checker.check(down, "POST", "/feedback", json={"transaction_id": "t", "label": 1})

    # A champion that fails its checks: the reload answers 502 and keeps the old one.
    onnx = store / "models/fraud-detector/versions/2/model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-10] + b"0123456789")
    alias = store / "models/fraud-detector/aliases/champion.json"
    alias.write_text(json.dumps({**json.loads(alias.read_text()), "version": "2"}))
    checker.check(client, "POST", "/admin/reload")

    # With tokens, guarded routes answer 401 without one and the rest as before.
    guarded = make_app(store, api_tokens="s3cret", admin_token="adm")
    tokens = guarded.test_client()
    for method, path in (
        ("POST", "/predict"),
        ("POST", "/feedback"),
        ("POST", "/admin/reload"),
        ("POST", f"{MODEL}/infer"),
        ("POST", f"{VERSION}/infer"),
    ):
        checker.check(tokens, method, path, json={})
    checker.check(tokens, "POST", "/predict", json=transaction(), headers=TOKEN)

    assert checker.seen == _documented(guarded) | _documented(served)
