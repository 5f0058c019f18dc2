"""Explanations as served: flagged transactions are answered at once and their reasons stored
with the prediction by the log writer, `explain` asks for them in the answer on any row, and a
model without cover says so."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from conftest import MakeApp
from fraud_detection.data import make_synthetic
from fraud_detection.prediction_log import open_engine
from fraud_detection.registry import sha256_hex
from fraud_detection.schema import FEATURES
from fraud_detection.serving import close_app
from fraud_detection.tree_arrays import read_tree_arrays, with_hitrates
from serving_helpers import transaction

INFER = "/v2/models/fraud-detector/infer"


def _rows() -> list[dict[str, Any]]:
    """20 synthetic frauds (most of them flagged) and 20 legitimate transactions."""
    df = make_synthetic(rows=20_000, seed=11)
    frauds, legit = df[df["Class"] == 1].head(20), df[df["Class"] == 0].head(20)
    return [
        {**{name: float(row[name]) for name in FEATURES}, "transaction_id": f"{kind}{i}"}
        for kind, part in (("f", frauds), ("l", legit))
        for i, (_, row) in enumerate(part.iterrows())
    ]


def _predict(client: FlaskClient, rows: list[dict[str, Any]], **extra: Any) -> list[Any]:
    response = client.post("/predict", json={"instances": rows, **extra})
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["predictions"])


def test_flagged_transactions_are_answered_without_waiting_for_their_explanation(
    client: FlaskClient,
) -> None:
    # Issue 19: explaining before answering cut a burst of flagged transactions to a fifth
    # of the capacity; their explanations are stored in the log instead (next tests).
    predictions = _predict(client, _rows())
    assert len([p for p in predictions if p["is_fraud"]]) >= 5
    assert not any("explanation" in p for p in predictions)


def test_explain_in_the_body_or_the_query_asks_for_every_row_or_none(
    client: FlaskClient,
) -> None:
    rows = _rows()
    every = _predict(client, rows, explain=True)
    assert all(p["explanation"]["top_features"] for p in every)
    assert not any("explanation" in p for p in _predict(client, rows, explain=False))
    single = client.post("/predict?explain=true", json=transaction())
    assert single.status_code == 200
    assert single.get_json()["explanation"]["top_features"]
    # The body's flag wins over the query's.
    body_wins = client.post("/predict?explain=1", json={**transaction(), "explain": False})
    assert "explanation" not in body_wins.get_json()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/predict", {**transaction(), "explain": "yes"}),
        ("/predict", {"instances": [transaction()], "explain": 1}),
        ("/predict?explain=maybe", transaction()),
        ("/predict?explain=maybe", {**transaction(), "explain": True}),
    ],
)
def test_explain_must_be_a_boolean(client: FlaskClient, path: str, body: Any) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "explain"


def test_all_contributions_add_up_to_the_probability(make_app: MakeApp, store: Path) -> None:
    client = make_app(store, explain_top=len(FEATURES)).test_client()
    for p in _predict(client, _rows(), explain=True):
        explanation = p["explanation"]
        total = explanation["expected_value"] + sum(
            f["contribution"] for f in explanation["top_features"]
        )
        assert total == pytest.approx(p["fraud_probability"], abs=2e-6)


def _stored(app: Flask, database_url: str) -> dict[str, Any]:
    close_app(app)  # flushes the log
    engine = open_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT transaction_id, explanation FROM predictions"))
            return {tid: None if e is None else json.loads(e) for tid, e in rows}
    finally:
        engine.dispose()


def test_explanations_are_stored_with_the_prediction(
    make_app: MakeApp, store: Path, database_url: str
) -> None:
    app = make_app(store, database_url=database_url)
    client = app.test_client()
    rows = _rows()
    predictions = _predict(client, rows)
    copies = [{**row, "transaction_id": f"inline-{row['transaction_id']}"} for row in rows]
    inline = {p["transaction_id"]: p["explanation"] for p in _predict(client, copies, explain=True)}
    flagged = [row for row, p in zip(rows, predictions, strict=True) if p["is_fraud"]]
    tensor = [[row[name] for name in FEATURES] for row in [*flagged[:2], rows[-1]]]
    infer = client.post(
        INFER,
        json={
            "id": "v2",
            "inputs": [{"name": "input", "datatype": "FP64", "shape": [3, 30], "data": tensor}],
        },
    )
    assert infer.status_code == 200
    v2_flags = infer.get_json()["outputs"][1]["data"]
    stored = _stored(app, database_url)
    # Flagged rows: explained by the log writer, as `explain` would have answered them.
    for row, p in zip(rows, predictions, strict=True):
        tid = p["transaction_id"]
        assert stored[tid] == (inline[f"inline-{tid}"] if p["is_fraud"] else None)
        if not p["is_fraud"]:
            continue
        explanation = stored[tid]
        assert explanation["output"] == "probability"
        top = explanation["top_features"]
        assert len(top) == 5
        sizes = [abs(f["contribution"]) for f in top]
        assert sizes == sorted(sizes, reverse=True)
        for f in top:
            assert f["value"] == pytest.approx(row[f["feature"]], rel=1e-6)
    # Rows explained in the answer are stored with that explanation.
    for tid, explanation in inline.items():
        assert stored[tid] == explanation
    for i, flag in enumerate(v2_flags):
        assert (stored[f"v2:{i}"] is not None) == flag
    assert v2_flags == [True, True, False]


def _without_cover(store: Path) -> None:
    """Rewrite the champion as a model exported before explanations (no cover)."""
    folder = store / "models" / "fraud-detector" / "versions" / "1"
    onnx_bytes = (folder / "model.onnx").read_bytes()
    plain = with_hitrates(onnx_bytes, np.ones(len(read_tree_arrays(onnx_bytes).mode)))
    (folder / "model.onnx").write_bytes(plain)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["model.onnx"] = sha256_hex(plain)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_a_model_without_cover_answers_and_says_it_cannot_explain(
    make_app: MakeApp, store: Path
) -> None:
    _without_cover(store)
    client = make_app(store).test_client()
    predictions = _predict(client, _rows(), explain=True)
    assert all(p["explanation"] is None for p in predictions)
    assert client.get("/models").get_json()["champion"]["explainable"] is False


def test_an_explainer_that_fails_to_build_never_stops_the_model_serving(
    make_app: MakeApp, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise KeyError("nodes_values")

    monkeypatch.setattr("fraud_detection.serving.model.build_explainer", broken)
    client = make_app(store).test_client()
    predictions = _predict(client, _rows(), explain=True)
    assert all(p["explanation"] is None for p in predictions)
    assert client.get("/models").get_json()["champion"]["explainable"] is False
