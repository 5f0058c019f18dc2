"""Event time and label provenance through the service into the log, on SQLite and
PostgreSQL: /predict rows and V2 requests may carry `event_time`, /feedback labels their
`source`, `observed_at` and `reviewer`; bad values get a 400 naming the field; a log made
before these columns gains them in place, its labels reading as `other`."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Column, DateTime, Engine, MetaData, SmallInteger, String, Table, inspect
from sqlalchemy import text as sql_text

from conftest import MakeApp
from fraud_detection.log_record import LOG_COLUMNS
from fraud_detection.prediction_log import (
    count_rows,
    ensure_schema,
    feedback,
    index_names,
    insert_predictions,
    open_engine,
    predictions,
    read_window,
    utc_now,
)
from serving_helpers import transaction
from waiting import wait_for

EVENT = "2026-03-01T09:30:00+02:00"


@pytest.fixture
def app(make_app: MakeApp, store: Path, database_url: str) -> Flask:
    return make_app(store, database_url=database_url)


@pytest.fixture
def engine(database_url: str) -> Engine:
    return open_engine(database_url)


def logged(engine: Engine, rows: int) -> bool:
    try:
        return count_rows(engine) == rows
    except Exception:  # the writer has not created the tables yet
        return False


def test_event_time_is_logged_beside_the_receive_time(app: Flask, engine: Engine) -> None:
    client = app.test_client()
    single = client.post("/predict", json=transaction(transaction_id="one", event_time=EVENT))
    batch = client.post(
        "/predict",
        json={"instances": [
            transaction(transaction_id="b0", event_time="2026-03-02T10:00:00Z"),
            transaction(transaction_id="b1"),
        ]},
    )  # fmt: skip
    v2 = client.post(
        "/v2/models/fraud-detector/infer",
        json={
            "id": "req",
            "inputs": [{"name": "input", "shape": [2, 30], "datatype": "FP32", "data": [1.0] * 60}],
            "parameters": {"event_time": ["2026-03-03T00:00:00", "2026-03-04T00:00:00"]},
        },
    )
    assert {single.status_code, batch.status_code, v2.status_code} == {200}
    wait_for(lambda: logged(engine, 5))
    window = read_window(engine, datetime(2000, 1, 1)).set_index("transaction_id")
    assert window.event_time.dropna().to_dict() == {
        "one": datetime(2026, 3, 1, 7, 30),  # kept in UTC, as every time in the log
        "b0": datetime(2026, 3, 2, 10, 0),
        "req:0": datetime(2026, 3, 3),
        "req:1": datetime(2026, 3, 4),
    }
    assert window.event_time.isna()["b1"], "no event time: the receive time stands for it"
    assert (window.created_at > utc_now() - timedelta(minutes=5)).all()
    # Windows go by when it happened: the rows of March are not in the last hour's window.
    assert list(read_window(engine, utc_now() - timedelta(hours=1)).transaction_id) == ["b1"]


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        ("/predict", transaction(event_time="yesterday"), "event_time"),
        ("/predict", transaction(event_time=1_700_000_000), "event_time"),
        (
            "/predict",
            {"instances": [transaction(), transaction(event_time="2026-13-01T00:00:00")]},
            "instances[1].event_time",
        ),
        (
            "/v2/models/fraud-detector/infer",
            {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP32", "data": [0.0] * 30}],
             "parameters": {"event_time": "soon"}},
            "parameters.event_time",
        ),
        (
            "/v2/models/fraud-detector/infer",
            {"inputs": [{"name": "x", "shape": [2, 30], "datatype": "FP32", "data": [0.0] * 60}],
             "parameters": {"event_time": ["2026-03-01T00:00:00"]}},
            "parameters.event_time",
        ),
    ],
)  # fmt: skip
def test_a_bad_event_time_gets_a_400_naming_the_field(
    app: Flask, path: str, body: dict[str, Any], where: str
) -> None:
    response = app.test_client().post(path, json=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    if path == "/predict":  # V2 errors are one message, as the protocol has them
        assert error["field"] == "event_time"
        error = error["message"]
    assert f"field {where}:" in error


def stored_labels(engine: Engine) -> dict[str, tuple[Any, ...]]:
    columns = (feedback.c.label, feedback.c.source, feedback.c.observed_at, feedback.c.reviewer)
    with engine.connect() as conn:
        rows = conn.execute(
            feedback.select().with_only_columns(feedback.c.transaction_id, *columns)
        )
        return {row[0]: tuple(row[1:]) for row in rows}


def test_labels_are_stored_with_their_source_observed_at_and_reviewer(
    app: Flask, engine: Engine
) -> None:
    client = app.test_client()
    labels = [
        {"transaction_id": "r", "label": 1, "source": "review", "reviewer": "ana",
         "observed_at": "2026-03-01T12:00:00Z"},
        {"transaction_id": "c", "label": 1, "source": "chargeback",
         "observed_at": "2026-03-20T08:00:00+01:00"},
        {"transaction_id": "o", "label": 0},
    ]  # fmt: skip
    assert client.post("/feedback", json={"labels": labels}).get_json() == {"stored": 3}
    assert stored_labels(engine) == {
        "r": (1, "review", datetime(2026, 3, 1, 12), "ana"),
        "c": (1, "chargeback", datetime(2026, 3, 20, 7), None),
        "o": (0, "other", None, None),
    }
    # A correction replaces the label and its provenance.
    client.post("/feedback", json={"transaction_id": "o", "label": 1, "source": "chargeback"})
    assert stored_labels(engine)["o"] == (1, "chargeback", None, None)


@pytest.mark.parametrize(
    ("label", "field"),
    [
        ({"transaction_id": "x", "label": 1, "source": "analyst"}, "source"),
        ({"transaction_id": "x", "label": 1, "observed_at": "last week"}, "observed_at"),
        ({"transaction_id": "x", "label": 1, "reviewer": "a\x00b"}, "reviewer"),
        ({"transaction_id": "x", "label": 1, "reviewer": "r" * 129}, "reviewer"),
    ],
)
def test_a_bad_provenance_gets_a_400_naming_the_field(
    app: Flask, label: dict[str, Any], field: str
) -> None:
    response = app.test_client().post("/feedback", json={"labels": [label]})
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == field


def test_an_old_log_gains_the_new_columns_in_place(database_url: str) -> None:
    engine = open_engine(database_url)
    old = MetaData()
    Table(
        "predictions",
        old,
        *(Column(c.name, c.type, primary_key=c.primary_key, autoincrement=c.autoincrement,
                 nullable=c.nullable) for c in predictions.columns if c.name != "event_time"),
    )  # fmt: skip
    Table(
        "feedback",
        old,
        Column("transaction_id", String(128), primary_key=True),
        Column("label", SmallInteger, nullable=False),
        Column("received_at", DateTime(), nullable=False),
    )
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sql_text("INSERT INTO feedback VALUES ('before', 1, :t)"), {"t": datetime(2026, 1, 1)}
        )

    ensure_schema(engine)

    have = inspect(engine)
    assert {"event_time"} <= {c["name"] for c in have.get_columns("predictions")}
    assert {"source", "observed_at", "reviewer"} <= {
        c["name"] for c in have.get_columns("feedback")
    }
    with engine.connect() as conn:
        assert "ix_predictions_event_time" in index_names(conn, "predictions")
    assert stored_labels(engine)["before"] == (1, "other", None, None)
    row = dict.fromkeys(LOG_COLUMNS, 0.0) | {
        "transaction_id": "new", "created_at": utc_now(), "endpoint": "predict",
        "variant": "champion", "model_version": "1", "is_fraud": False,
        "latency_ms": None, "explanation": None, "event_time": datetime(2026, 2, 1),
    }  # fmt: skip
    insert_predictions(engine, [tuple(row[c] for c in LOG_COLUMNS)])
    assert read_window(engine, datetime(2026, 1, 31)).event_time.tolist() == [datetime(2026, 2, 1)]


def test_v2_parameters_must_be_an_object(app: Flask) -> None:
    body = {
        "inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP32", "data": [0.0] * 30}],
        "parameters": [None],
    }
    response = app.test_client().post("/v2/models/fraud-detector/infer", json=body)
    assert response.status_code == 400 and "parameters" in response.get_json()["error"]


def test_the_openapi_document_names_event_time_and_the_label_provenance(app: Flask) -> None:
    schemas = app.test_client().get("/openapi.json").get_json()["components"]["schemas"]
    assert schemas["Transaction"]["properties"]["event_time"]["format"] == "date-time"
    label = schemas["Label"]["properties"]
    assert label["source"]["enum"] == ["review", "chargeback", "other"]
    assert label["source"]["default"] == "other"
    assert {"observed_at", "reviewer"} <= label.keys()
    parameters = schemas["V2Request"]["properties"]["parameters"]["properties"]
    assert "event_time" in parameters
