"""Retention of the prediction log: `fraud log prune` in batches, 64-bit ids and their
migration, and the daily prune `fraud schedule` runs; on SQLite and PostgreSQL."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text
from sqlalchemy.schema import CreateTable

from fraud_detection.cli import cli
from fraud_detection.prediction_log import (
    LOG_COLUMNS,
    count_rows,
    ensure_schema,
    insert_predictions,
    open_engine,
    predictions,
    prune,
    read_window,
    store_labels,
    utc_now,
)
from fraud_detection.schedule import Job
from fraud_detection.schema import FEATURES


def log_rows(engine: Engine, ages_days: Sequence[float], prefix: str) -> None:
    now = utc_now()
    base = {"endpoint": "predict", "variant": "champion", "model_version": "1",
            "probability": 0.1, "is_fraud": False, "threshold": 0.5, "latency_ms": 1.0,
            "explanation": None, "event_time": None, **dict.fromkeys(FEATURES, 0.5)}  # fmt: skip
    rows = [
        {**base, "transaction_id": f"{prefix}{i}", "created_at": now - timedelta(days=age)}
        for i, age in enumerate(ages_days)
    ]
    insert_predictions(engine, [tuple(row[c] for c in LOG_COLUMNS) for row in rows])


def test_prune_deletes_old_predictions_and_orphaned_labels_in_batches(database_url: str) -> None:
    engine = open_engine(database_url)
    ensure_schema(engine)
    log_rows(engine, [40.0] * 23, "old")
    log_rows(engine, [1.0] * 5, "new")
    # Labels received long ago: kept while their prediction is kept, gone with it.
    store_labels(engine, {"old0": 1, "old1": 0, "new0": 1})
    with engine.begin() as conn:
        conn.execute(text("UPDATE feedback SET received_at = :t"), {"t": utc_now() - timedelta(40)})
    store_labels(engine, {"future0": 1})  # a fresh label whose prediction is not logged yet

    assert prune(engine, utc_now() - timedelta(days=30), batch_rows=7) == (23, 2)
    window = read_window(engine, datetime(2000, 1, 1))
    assert sorted(window.transaction_id) == [f"new{i}" for i in range(5)]
    assert window.set_index("transaction_id").label["new0"] == 1.0
    log_rows(engine, [0.0], "future")
    assert read_window(engine, utc_now() - timedelta(hours=1)).label.tolist() == [1.0]
    assert prune(engine, utc_now() - timedelta(days=30)) == (0, 0)


def test_prune_of_a_log_that_does_not_exist_yet_deletes_nothing(database_url: str) -> None:
    assert prune(open_engine(database_url), utc_now()) == (0, 0)


def test_fraud_log_prune_keeps_the_retention_setting(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_engine(database_url)
    ensure_schema(engine)
    log_rows(engine, [100.0, 50.0, 10.0, 1.0], "t")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("FRAUD_LOG_RETENTION_DAYS", "60")
    by_setting = CliRunner().invoke(cli, ["log", "prune"])
    assert by_setting.exit_code == 0, by_setting.output
    assert "Pruned 1 predictions and 0 labels" in by_setting.stdout
    by_flag = CliRunner().invoke(cli, ["log", "prune", "--older-than", "5", "--batch-rows", "1"])
    assert "Pruned 2 predictions" in by_flag.stdout and count_rows(engine) == 1
    refused = CliRunner().invoke(cli, ["log", "prune", "--older-than", "0"])
    assert refused.exit_code == 2


def test_ids_are_64_bit_and_an_old_postgresql_log_is_widened_in_place(database_url: str) -> None:
    engine = open_engine(database_url)
    if engine.dialect.name == "postgresql":
        # The schema as it was: a 32-bit serial id.
        ddl = str(CreateTable(predictions).compile(dialect=engine.dialect))
        with engine.begin() as conn:
            conn.execute(text(ddl.replace("BIGSERIAL", "SERIAL")))
        log_rows(engine, [1.0], "before")
        with engine.begin() as conn:
            assert conn.execute(text(_ID_TYPE)).scalar() == "integer"
    ensure_schema(engine)
    log_rows(engine, [1.0], "seed")
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            assert conn.execute(text(_ID_TYPE)).scalar() == "bigint"
            conn.execute(text("SELECT setval(pg_get_serial_sequence('predictions', 'id'), :n)"),
                         {"n": 2**31 + 5})  # fmt: skip
        else:  # the rowid: the next row takes the largest id plus one
            conn.execute(text("UPDATE predictions SET id = :n"), {"n": 2**31 + 5})
    log_rows(engine, [0.5], "after")
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM predictions ORDER BY id")).scalars().all()
    assert ids[-1] > 2**31


_ID_TYPE = (
    "SELECT data_type FROM information_schema.columns "
    "WHERE table_name = 'predictions' AND column_name = 'id'"
)


def test_schedule_prunes_the_log_daily(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    planned: list[Job] = []
    monkeypatch.setattr(
        "fraud_detection.cli.schedule.run_schedule", lambda jobs, **_: planned.extend(jobs)
    )
    # The command takes SIGTERM over for its loop: the test process gets its own back.
    monkeypatch.setattr("signal.signal", lambda *_: None)
    url = f"sqlite:///{tmp_path / 'log.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    result = CliRunner().invoke(cli, ["schedule", "--reports", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (job,) = [job for job in planned if job.name == "daily prune"]
    # The job is `fraud log prune` run in the scheduler's process: it keeps 90 days.
    engine = open_engine(url)
    ensure_schema(engine)
    log_rows(engine, [100.0, 1.0], "p")
    job.task()
    assert count_rows(engine) == 1
    assert (
        job.next_after(datetime(2026, 3, 1, 5, 0, tzinfo=UTC)).isoformat()
        == "2026-03-02T04:00:00+00:00"
    )
