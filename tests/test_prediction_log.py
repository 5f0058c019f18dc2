"""The prediction log and /feedback on SQLite and PostgreSQL, in-process."""

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from flask import Flask
from prometheus_client import REGISTRY
from sqlalchemy import Engine, text
from sqlalchemy.dialects.sqlite import DATETIME

from conftest import MakeApp
from fraud_detection.log_record import LOG_COLUMNS
from fraud_detection.prediction_log import (
    count_rows,
    ensure_schema,
    labelled_chunks,
    open_engine,
    predictions,
    read_window,
    sqlite_time,
    utc_now,
)
from fraud_detection.schema import COLUMNS
from fraud_detection.serving.log_spool import replay
from serving_helpers import transaction
from waiting import wait_for


@pytest.fixture
def app(make_app: MakeApp, store: Path, database_url: str) -> Flask:
    return make_app(store, database_url=database_url)


@pytest.fixture
def engine(database_url: str) -> Engine:
    return open_engine(database_url)


def dropped(reason: str) -> float:
    """Rows this process's writers dropped for `reason`."""
    labels = {"reason": reason}
    return REGISTRY.get_sample_value("fraud_prediction_log_dropped_total", labels) or 0.0


def rows_in(engine: Engine) -> int:
    try:
        return count_rows(engine)
    except Exception:  # the writer has not created the tables yet
        return 0


def test_scored_transactions_are_logged_with_features_version_and_variant(
    app: Flask, engine: Engine
) -> None:
    client = app.test_client()
    single = client.post("/predict", json=transaction(transaction_id="tx-1", Amount=12.5))
    batch = client.post(
        "/predict", json={"instances": [transaction(transaction_id=f"b-{i}") for i in range(3)]}
    )
    v2 = client.post(
        "/v2/models/fraud-detector/infer",
        json={
            "id": "req-9",
            "inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP32", "data": [1.0] * 30}],
        },
    )
    assert {single.status_code, batch.status_code, v2.status_code} == {200}
    wait_for(lambda: rows_in(engine) == 5)

    window = read_window(engine, utc_now() - timedelta(minutes=5))
    assert list(window.transaction_id) == ["tx-1", "b-0", "b-1", "b-2", "req-9:0"]
    first = window.iloc[0]
    assert first.Amount == 12.5 and first.V3 == pytest.approx(0.3)
    assert first.model_version == "1" and first.variant == "champion"
    assert first.probability == pytest.approx(single.get_json()["fraud_probability"], abs=1e-6)
    assert bool(first.is_fraud) == single.get_json()["is_fraud"]
    assert list(window.endpoint.unique()) == ["predict", "v2_infer"]
    assert window.label.isna().all()


def test_feedback_labels_join_their_predictions(app: Flask, engine: Engine) -> None:
    client = app.test_client()
    client.post(
        "/predict", json={"instances": [transaction(transaction_id=f"t{i}") for i in range(4)]}
    )
    wait_for(lambda: rows_in(engine) == 4)

    one = client.post("/feedback", json={"transaction_id": "t0", "label": 1})
    many = client.post(
        "/feedback",
        json={
            "labels": [{"transaction_id": "t1", "label": 0}, {"transaction_id": "t2", "label": 1}]
        },
    )
    correction = client.post("/feedback", json={"transaction_id": "t2", "label": 0})
    assert one.get_json() == {"stored": 1} and many.get_json() == {"stored": 2}
    assert correction.status_code == 200

    window = read_window(engine, utc_now() - timedelta(minutes=5)).set_index("transaction_id")
    assert window.label.to_dict() == pytest.approx(
        {"t0": 1.0, "t1": 0.0, "t2": 0.0, "t3": float("nan")}, nan_ok=True
    )
    chunks = list(labelled_chunks(engine, utc_now() - timedelta(minutes=5), chunk_rows=2))
    assert [len(chunk) for chunk in chunks] == [2, 1]  # unlabelled t3 never leaves the database
    assert all(list(chunk.columns) == list(COLUMNS) for chunk in chunks)
    assert sorted(pd.concat(chunks).Class) == [0, 0, 1]


def test_feedback_may_arrive_before_its_prediction_is_written(app: Flask, engine: Engine) -> None:
    client = app.test_client()
    assert client.post("/feedback", json={"transaction_id": "early", "label": 1}).status_code == 200
    client.post("/predict", json=transaction(transaction_id="early"))
    wait_for(lambda: rows_in(engine) == 1)
    assert read_window(engine, utc_now() - timedelta(minutes=5)).label.tolist() == [1.0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"transaction_id": "x", "label": 2}, "label"),
        ({"transaction_id": "x", "label": "fraud"}, "label"),
        ({"transaction_id": "x", "label": True}, "label"),
        ({"label": 1}, "transaction_id"),
        (
            {"labels": [{"transaction_id": "a", "label": 1}, {"transaction_id": "", "label": 0}]},
            "transaction_id",
        ),
        ({"labels": []}, "labels"),
    ],
)
def test_bad_feedback_gets_400_naming_the_field(
    app: Flask, body: dict[str, object], field: str, engine: Engine
) -> None:
    response = app.test_client().post("/feedback", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == field
    # Nothing of a rejected request is stored, not even its valid items.
    ensure_schema(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM feedback")).scalar_one() == 0


def test_a_full_buffer_drops_rows_and_counts_them(
    make_app: MakeApp, store: Path, database_url: str
) -> None:
    app = make_app(store, database_url=database_url, log_capacity=3)
    writer = app.extensions["fraud"].prediction_log
    writer.close()  # no writer thread: every row stays in the buffer
    client = app.test_client()
    before = dropped("buffer_full")
    statuses = [
        client.post("/predict", json={"instances": [transaction()] * 2}).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 200]
    # The first batch fits (2 of 3 rows); the next two would overflow and are counted.
    assert dropped("buffer_full") - before == 4


def test_a_down_database_never_fails_scoring_and_feedback_says_503(
    make_app: MakeApp, store: Path, tmp_path: Path
) -> None:
    # Nothing listens on port 1: every connection is refused at once.
    app = make_app(store, database_url="postgresql://nobody@127.0.0.1:1/none")
    client = app.test_client()
    before = dropped("shutdown")
    assert client.post("/predict", json=transaction(transaction_id="tx-1")).status_code == 200
    response = client.post("/feedback", json={"transaction_id": "x", "label": 1})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "prediction_log_unavailable"
    # Where the database lives is for the server log, not for callers.
    assert response.get_json()["error"]["message"] == "prediction log unavailable; retry later"
    app.extensions["fraud"].prediction_log.close(timeout=10)
    # Issue 19: the unwritten row stays in the spool for the next writer, not dropped.
    assert dropped("shutdown") - before == 0
    (spooled,) = [p for p in tmp_path.rglob("*.spool") if p.stat().st_size]
    assert [row[0] for row in replay(spooled.read_bytes())] == ["tx-1"]


def test_an_older_table_gets_the_columns_added_since(database_url: str) -> None:
    engine = open_engine(database_url)
    ensure_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE predictions DROP COLUMN latency_ms"))
    ensure_schema(engine)
    with engine.connect() as conn:
        conn.execute(text("SELECT latency_ms FROM predictions"))
    assert count_rows(engine) == 0


def test_plain_postgres_urls_use_the_installed_driver() -> None:
    engine = open_engine("postgres://u@localhost/db")
    assert engine.dialect.driver == "psycopg"


def test_every_column_of_the_table_but_its_key_is_a_logged_value() -> None:
    assert {c.name for c in predictions.columns} - {"id"} == set(LOG_COLUMNS)


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 3, 1, 9, 30),  # a zero microsecond, which isoformat leaves out
        datetime(2026, 3, 1, 9, 30, 0, 7),
        datetime(1, 1, 1),  # strftime would write the year as "1", out of order
        datetime(999, 12, 31, 23, 59, 59, 999_999),
    ],
)
def test_the_log_writes_times_as_sqlalchemy_stores_them_in_sqlite(at: datetime) -> None:
    """The writer formats times itself (it skips SQLAlchemy's parameter handling): the text
    must be SQLAlchemy's own, or windows and joins on time would compare unlike strings."""
    assert sqlite_time(at) == DATETIME().bind_processor(None)(at)  # type: ignore[arg-type]
