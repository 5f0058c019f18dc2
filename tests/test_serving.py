"""The Flask service in-process: /predict, V2, health, models, metrics, reload, auth."""

import json
import shutil
import threading
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from conftest import MakeApp
from fraud_detection.registry import Registry
from fraud_detection.schema import FEATURES
from fraud_detection.store import open_store
from serving_helpers import sample, scored, train_into, transaction
from waiting import wait_for


def registry(store: Path) -> Registry:
    return Registry(open_store(str(store)), "fraud-detector")


def test_single_transaction_isscored(client: FlaskClient) -> None:
    response = client.post("/predict", json=transaction(transaction_id="tx-1"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["transaction_id"] == "tx-1"
    assert 0.0 <= body["fraud_probability"] <= 1.0
    assert body["is_fraud"] == (body["fraud_probability"] >= body["threshold"])
    assert body["model_version"] == "1"


def test_batch_is_scored_in_order_and_ids_are_generated(client: FlaskClient) -> None:
    instances = [transaction(transaction_id="a"), transaction(V14=-12.0, V17=-10.0), transaction()]
    body = client.post("/predict", json={"instances": instances}).get_json()
    predictions = body["predictions"]
    assert len(predictions) == 3
    assert predictions[0]["transaction_id"] == "a"
    assert len({p["transaction_id"] for p in predictions}) == 3
    single = client.post("/predict", json=instances[1]).get_json()
    assert predictions[1]["fraud_probability"] == single["fraud_probability"]


def test_extra_fields_are_accepted_and_ignored(client: FlaskClient) -> None:
    plain = client.post("/predict", json=transaction()).get_json()
    extra = client.post("/predict", json=transaction(merchant="ACME", mcc=5411)).get_json()
    assert extra["fraud_probability"] == plain["fraud_probability"]


def _bad(field: str, value: object) -> bytes:
    body = json.dumps(transaction()).replace(f'"{field}": ', f'"{field}": {value}, "_x": ', 1)
    return body.encode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_bad("V3", "NaN"), "V3"),
        (_bad("V3", "Infinity"), "V3"),
        (_bad("V4", "-Infinity"), "V4"),
        (_bad("V5", '"1.5"'), "V5"),
        (_bad("Amount", "true"), "Amount"),
        (_bad("Amount", "-0.01"), "Amount"),
        (_bad("V6", "null"), "V6"),
        (_bad("V7", "[1]"), "V7"),
        (json.dumps({k: v for k, v in transaction().items() if k != "V9"}).encode(), "V9"),
        (
            json.dumps(
                {("V1O" if k == "V10" else k): v for k, v in transaction().items()}
            ).encode(),
            "V10",
        ),
        (json.dumps({"instances": []}).encode(), "instances"),
        (json.dumps({"instances": {"a": 1}}).encode(), "instances"),
        (json.dumps({"instances": [transaction(), transaction(V2="x")]}).encode(), "V2"),
    ],
)
def test_bad_feature_gets_400_naming_the_field(
    client: FlaskClient, body: bytes, field: str
) -> None:
    response = client.post("/predict", data=body, content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["field"] == field
    assert field in error["message"]


def test_misspelt_field_is_pointed_out(client: FlaskClient) -> None:
    body = {("V1O" if k == "V10" else k): v for k, v in transaction().items()}
    message = client.post("/predict", json=body).get_json()["error"]["message"]
    assert "V10" in message and "V1O" in message


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"data": "Time=1", "content_type": "application/x-www-form-urlencoded"}, 415),
        ({"data": json.dumps(transaction()), "content_type": "text/plain"}, 415),
        ({"data": b"{not json", "content_type": "application/json"}, 400),
        ({"data": b"[1, 2, 3]", "content_type": "application/json"}, 400),
        ({"data": b"\xff\xfe", "content_type": "application/json"}, 400),
        ({"json": {"instances": [transaction()] * 1001}}, 413),
        ({"data": b" " * (5 * 1024 * 1024), "content_type": "application/json"}, 413),
    ],
)
def test_bad_requests_get_clear_4xx_json(client: FlaskClient, kwargs: dict, status: int) -> None:
    response = client.post("/predict", **kwargs)
    assert response.status_code == status
    assert response.is_json
    assert response.get_json()["error"]["message"]


def test_v2_infer_answers_an_open_inference_protocol_request(client: FlaskClient) -> None:
    rows = [
        [float(transaction()[f]) for f in FEATURES],
        [float(transaction(V14=-12.0)[f]) for f in FEATURES],
    ]
    request = {
        "id": "42",
        "inputs": [
            {
                "name": "input",
                "shape": [2, 30],
                "datatype": "FP32",
                "data": [v for row in rows for v in row],
            }
        ],
    }
    response = client.post("/v2/models/fraud-detector/infer", json=request)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["model_name"] == "fraud-detector" and body["id"] == "42"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert (
        outputs["probabilities"]["shape"] == [2] and outputs["probabilities"]["datatype"] == "FP32"
    )
    assert outputs["is_fraud"]["datatype"] == "BOOL"
    nested = {"inputs": [{"name": "input", "shape": [2, 30], "datatype": "FP64", "data": rows}]}
    again = client.post("/v2/models/fraud-detector/versions/1/infer", json=nested).get_json()
    assert again["outputs"][0]["data"] == outputs["probabilities"]["data"]
    single = client.post("/predict", json=transaction(V14=-12.0)).get_json()
    assert outputs["probabilities"]["data"][1] == single["fraud_probability"]


@pytest.mark.parametrize(
    ("tensor", "field", "status"),
    [
        ({"shape": [1, 29], "datatype": "FP32", "data": [0.0] * 29}, "shape", 400),
        ({"shape": [30], "datatype": "FP32", "data": [0.0] * 30}, "shape", 400),
        ({"shape": [1, 30], "datatype": "INT64", "data": [0] * 30}, "datatype", 400),
        ({"shape": [1, 30], "datatype": "FP32", "data": [0.0] * 29}, "data", 400),
        ({"shape": [1, 30], "datatype": "FP32", "data": ["a"] * 30}, "data", 400),
        ({"shape": [1, 30], "datatype": "FP32", "data": [0.0] * 29 + [-5.0]}, "Amount", 400),
        ({"shape": [1, 30], "datatype": "FP32", "data": [True] * 30}, "data", 400),
        ({"shape": [1, 30], "datatype": "FP32", "data": [None] * 30}, "data", 400),
        ({"shape": [2000, 30], "datatype": "FP32", "data": [0.0] * 60000}, "shape", 413),
    ],
)
def test_v2_bad_tensors_get_4xx_naming_the_field(
    client: FlaskClient, tensor: dict, field: str, status: int
) -> None:
    body = {"inputs": [{"name": "input", **tensor}]}
    response = client.post("/v2/models/fraud-detector/infer", json=body)
    assert response.status_code == status
    # The Open Inference Protocol's error body: one string, which names the field.
    assert field in response.get_json()["error"]


def test_v2_request_shaped_like_the_spec_example_gets_the_named_output(
    client: FlaskClient,
) -> None:
    # The Open Inference Protocol's example: id, named inputs with shape, datatype, data,
    # and the outputs the client wants.
    request = {
        "id": "42",
        "inputs": [
            {
                "name": "input0",
                "shape": [1, 30],
                "datatype": "FP64",
                "data": [float(transaction()[f]) for f in FEATURES],
            }
        ],
        "outputs": [{"name": "is_fraud"}],
    }
    body = client.post("/v2/models/fraud-detector/infer", json=request).get_json()
    assert body["id"] == "42"
    assert [o["name"] for o in body["outputs"]] == ["is_fraud"]
    assert body["outputs"][0] == {
        "name": "is_fraud",
        "shape": [1],
        "datatype": "BOOL",
        "data": [False],
    }
    bad = {**request, "outputs": [{"name": "output0"}]}
    response = client.post("/v2/models/fraud-detector/infer", json=bad)
    assert response.status_code == 400 and "outputs" in response.get_json()["error"]


def test_v2_metadata_health_and_unknown_model(client: FlaskClient) -> None:
    assert client.get("/v2/health/live").get_json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 200
    meta = client.get("/v2/models/fraud-detector").get_json()
    assert meta["inputs"][0]["shape"] == [-1, 30]
    assert client.get("/v2/models/fraud-detector/ready").status_code == 200
    assert client.get("/v2/models/other/ready").status_code == 404
    assert client.get("/v2/models/fraud-detector/versions/99").status_code == 404


def test_models_endpoint_shows_champion_and_challenger(client: FlaskClient) -> None:
    body = client.get("/models").get_json()
    assert body["champion"]["version"] == "1"
    assert body["challenger"]["version"] == "2"
    assert body["champion"]["synthetic"] is True


def test_openapi_document_describes_the_endpoints(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert {"/predict", "/feedback", "/v2/models/{name}/infer", "/models"} <= doc["paths"].keys()
    assert doc["components"]["schemas"]["Label"]["required"] == ["transaction_id", "label"]
    transaction_schema = doc["components"]["schemas"]["Transaction"]
    assert set(FEATURES) <= set(transaction_schema["required"])
    assert transaction_schema["additionalProperties"] is True


def test_metrics_count_predictions_and_errors(client: FlaskClient) -> None:
    before = sum(
        sample("fraud_predictions_total", model_version="1", variant="champion", decision=d)
        for d in ("fraud", "legit")
    )
    errors_before = sample("fraud_request_errors_total", endpoint="predict", reason="invalid_field")
    client.post("/predict", json={"instances": [transaction()] * 5})
    client.post("/predict", json=transaction(V1="x"))
    after = sum(
        sample("fraud_predictions_total", model_version="1", variant="champion", decision=d)
        for d in ("fraud", "legit")
    )
    assert after - before == 5
    assert (
        sample("fraud_request_errors_total", endpoint="predict", reason="invalid_field")
        - errors_before
        == 1
    )
    text = client.get("/metrics").get_data(as_text=True)
    for name in (
        "fraud_prediction_latency_seconds",
        "fraud_score",
        "fraud_model_info",
        "fraud_request_errors_total",
        "flask_http_request_duration_seconds",
    ):
        assert name in text


def test_auth_tokens_guard_scoring_and_admin(store: Path, make_app: MakeApp) -> None:
    app = make_app(store, api_tokens="s3cret,other", admin_token="adm")
    client = app.test_client()
    assert client.post("/predict", json=transaction()).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.post("/predict", json=transaction(), headers=wrong).status_code == 401
    ok = {"Authorization": "Bearer other"}
    assert client.post("/predict", json=transaction(), headers=ok).status_code == 200
    assert client.post("/admin/reload", headers=ok).status_code == 401
    assert client.post("/admin/reload", headers={"Authorization": "Bearer adm"}).status_code == 200
    assert client.get("/v2/health/ready").status_code == 200, "health needs no token"


def test_not_ready_until_a_model_exists_then_loads(tmp_path: Path, make_app: MakeApp) -> None:
    empty = tmp_path / "empty-store"
    app = make_app(empty)
    client = app.test_client()
    assert client.get("/v2/health/ready").status_code == 503
    assert client.post("/predict", json=transaction()).status_code == 503
    reload = client.post("/admin/reload")
    assert reload.status_code == 503
    error = reload.get_json()["error"]
    assert error["code"] == "unavailable" and "has no champion" in error["message"]
    train_into(empty, promote=True)
    assert client.post("/admin/reload").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    assert client.post("/predict", json=transaction()).status_code == 200


def test_restart_during_a_store_outage_serves_the_cached_model(
    store: Path, make_app: MakeApp
) -> None:
    make_app(store)  # fills the local cache
    shutil.rmtree(store)
    (store.parent / "store").write_text("not a folder: the store is broken")
    restarted = make_app(store)
    client = restarted.test_client()
    assert client.get("/v2/health/ready").status_code == 200
    body = client.get("/models").get_json()
    assert body["champion"]["version"] == "1" and body["champion"]["source"] == "local cache"
    assert client.post("/predict", json=transaction()).status_code == 200


def test_corrupted_new_champion_is_refused_and_the_old_one_kept(
    client: FlaskClient, store: Path
) -> None:
    onnx = store / "models/fraud-detector/versions/2/model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-10] + b"0123456789")
    alias = store / "models/fraud-detector/aliases/champion.json"
    pointer = json.loads(alias.read_text())
    alias.write_text(json.dumps({**pointer, "version": "2"}))
    failures = sample("fraud_model_reloads_total", result="failure")
    assert client.post("/admin/reload").status_code == 502
    assert client.post("/predict", json=transaction()).get_json()["model_version"] == "1"
    assert sample("fraud_model_reloads_total", result="failure") == failures + 1


def test_hot_reload_under_traffic_switches_versions_without_errors(
    store: Path, make_app: MakeApp
) -> None:
    app = make_app(store, reload_interval=0.05)
    client = app.test_client()
    reg = registry(store)
    seen: list[str] = []
    failures: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            response = client.post("/predict", json=transaction())
            if response.status_code != 200:
                failures.append(response.status_code)
            else:
                seen.append(response.get_json()["model_version"])

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        for target in ("2", "1"):
            reg.promote(target, reason="test")
            wait_for(lambda t=target: bool(seen) and seen[-1] == t, timeout=20, interval=0.01)
    finally:
        stop.set()
        worker.join()
    assert not failures
    switches = [v for i, v in enumerate(seen) if i == 0 or seen[i - 1] != v]
    assert switches == ["1", "2", "1"]


def test_admin_is_closed_when_only_scoring_tokens_are_set(store: Path, make_app: MakeApp) -> None:
    app = make_app(store, api_tokens="s3cret")
    client = app.test_client()
    token = {"Authorization": "Bearer s3cret"}
    assert client.post("/predict", json=transaction(), headers=token).status_code == 200
    assert client.post("/admin/reload", headers=token).status_code == 401


def test_serving_follows_a_rollback_on_its_next_reload(client: FlaskClient, store: Path) -> None:
    reg = registry(store)
    reg.promote("2", reason="new model")
    client.post("/admin/reload")
    assert client.post("/predict", json=transaction()).get_json()["model_version"] == "2"
    assert reg.rollback(reason="bad model") == "1"
    client.post("/admin/reload")
    assert client.post("/predict", json=transaction()).get_json()["model_version"] == "1"
    assert [e["action"] for e in reg.events()][-2:] == ["promoted", "rolled_back"]


def test_challenger_traffic_is_a_sticky_share_by_transaction_id(
    store: Path, make_app: MakeApp
) -> None:
    app = make_app(store, challenger_traffic=0.2)
    client = app.test_client()
    before = scored("2", "challenger")
    instances = [transaction(transaction_id=f"ab-{i}") for i in range(1000)]
    first = client.post("/predict", json={"instances": instances}).get_json()["predictions"]
    again = client.post("/predict", json={"instances": instances[:300]}).get_json()["predictions"]
    versions = [p["model_version"] for p in first]
    assert 0.15 < versions.count("2") / len(versions) < 0.25
    assert [p["model_version"] for p in again] == versions[:300]
    assert [p["transaction_id"] for p in first] == [f"ab-{i}" for i in range(1000)]
    assert scored("2", "challenger") - before == versions.count("2") + versions[:300].count("2")


def test_shadow_scores_with_both_and_answers_with_the_champion(
    store: Path, make_app: MakeApp
) -> None:
    app = make_app(store, shadow=True)
    before = scored("2", "shadow")
    body = app.test_client().post("/predict", json={"instances": [transaction()] * 5}).get_json()
    assert {p["model_version"] for p in body["predictions"]} == {"1"}
    assert scored("2", "shadow") - before == 5
