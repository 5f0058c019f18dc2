"""Faults in the middle of a load under gunicorn (PostgreSQL stopped, a worker killed): no row
is lost unaccounted (written rows plus the dropped counter equal the transactions scored)."""

import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from fraud_detection.prediction_log import count_rows, ensure_schema, open_engine, predictions
from postgres_helpers import PrivatePostgres
from serving_helpers import metric_sum, serve, train_into, transaction

REQUESTS = 300


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("outage") / "store"
    train_into(store, promote=True)
    return store


def log_accounting(url: str, expected: float) -> tuple[float, float]:
    """Rows written and dropped, once they add up to `expected` or 60 s have passed."""
    deadline = time.monotonic() + 60
    while True:
        text = requests.get(f"{url}/metrics", timeout=5).text
        written = metric_sum(text, "fraud_prediction_log_written_total")
        dropped = metric_sum(text, "fraud_prediction_log_dropped_total")
        if written + dropped == expected or time.monotonic() > deadline:
            return written, dropped
        time.sleep(0.2)


def test_database_outage_mid_load_fails_no_request_and_loses_no_row_silently(
    private_postgres: PrivatePostgres, tmp_path: Path, store: Path
) -> None:
    with (
        private_postgres.database() as url,
        # A small buffer, so the outage overflows it and the dropped counter has work to do.
        serve(store, tmp_path, DATABASE_URL=url, FRAUD_LOG_CAPACITY="40") as service,
    ):
        session = requests.Session()
        statuses = []
        try:
            for i in range(REQUESTS):
                if i == 100:
                    private_postgres.stop()
                if i == 200:
                    private_postgres.start()
                body = transaction(transaction_id=f"load-{i}", Amount=float(i))
                statuses.append(
                    session.post(f"{service}/predict", json=body, timeout=5).status_code
                )
        finally:
            private_postgres.start()  # the session's other tests need it running
        assert statuses == [200] * REQUESTS

        engine = open_engine(url)
        written, dropped = log_accounting(service, REQUESTS)
        with engine.connect() as conn:
            in_db = conn.execute(select(func.count()).select_from(predictions)).scalar_one()
        assert (written, dropped) != (REQUESTS, 0), "the outage should have cost some rows"
        assert written + dropped == REQUESTS
        assert in_db == written


def test_a_worker_killed_with_rows_in_its_buffer_loses_none(tmp_path: Path, store: Path) -> None:
    database = tmp_path / "predictions.db"
    ensure_schema(open_engine(f"sqlite:///{database}"))
    # Another writer holds the database, so the workers' rows wait in their buffers.
    lock = sqlite3.connect(database, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    with serve(store, tmp_path) as url:
        answered = 0
        for i in range(40):
            if i == 20:
                os.kill(worker_with_rows(tmp_path / "log-spool"), signal.SIGKILL)
            body = {"instances": [transaction(transaction_id=f"k{i}-{j}") for j in range(25)]}
            try:  # a new connection each time, so both workers get requests
                if requests.post(f"{url}/predict", json=body, timeout=10).status_code == 200:
                    answered += 25
            except requests.ConnectionError:  # the request the killed worker was serving
                pass
        lock.rollback()
        lock.close()

        written, dropped = log_accounting(url, answered)
        assert (written, dropped) == (answered, 0)
        assert count_rows(open_engine(f"sqlite:///{database}")) == answered
    assert "replaying" in (tmp_path / "serve.log").read_text()


def worker_with_rows(spool: Path) -> int:
    """The pid of a worker whose spool holds rows (spool files are named `<pid>-<id>.spool`)."""
    held = [p for p in spool.rglob("*.spool") if p.stat().st_size]
    assert held, "no worker has spooled rows"
    return int(held[0].name.split("-")[0])
