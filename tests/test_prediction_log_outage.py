"""Faults in the middle of a load under gunicorn (PostgreSQL stopped, a worker killed): no row
is lost unaccounted (written rows plus the dropped counter equal the transactions scored), and
an outage loses none while the spools have room."""

import os
import re
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from fraud_detection.prediction_log import count_rows, ensure_schema, open_engine, predictions
from postgres_helpers import PrivatePostgres
from serving_helpers import metric_sum, serve, train_into, transaction
from waiting import wait_for

REQUESTS = 300
OUTAGE_SECONDS = 120
UNAVAILABLE = re.escape('fraud_prediction_log_dropped_total{reason="unavailable"}')


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("outage") / "store"
    train_into(store, promote=True)
    return store


def log_accounting(url: str, expected: float, timeout: float = 60) -> tuple[float, float]:
    """Rows written and dropped, once they add up to `expected` or `timeout` s have passed."""
    deadline = time.monotonic() + timeout
    while True:
        text = requests.get(f"{url}/metrics", timeout=5).text
        written = metric_sum(text, "fraud_prediction_log_written_total")
        dropped = metric_sum(text, "fraud_prediction_log_dropped_total")
        if written + dropped == expected or time.monotonic() > deadline:
            return written, dropped
        time.sleep(0.2)


def metric(url: str, name: str) -> float:
    return metric_sum(requests.get(f"{url}/metrics", timeout=5).text, name)


class Load:
    """Clients posting batches of ROWS transactions in a loop until stopped; every answer's
    status and the rows scored are kept."""

    ROWS = 10

    def __init__(self, url: str, clients: int = 3) -> None:
        self.url = url
        self.statuses: list[int] = []
        self.scored = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(clients)
        ]
        for thread in self._threads:
            thread.start()

    def _client(self, n: int) -> None:
        session = requests.Session()
        sent = 0
        while not self._stop.is_set():
            ids = [f"c{n}-{sent}-{j}" for j in range(self.ROWS)]
            body = {"instances": [transaction(transaction_id=tid) for tid in ids]}
            status = session.post(f"{self.url}/predict", json=body, timeout=10).status_code
            with self._lock:
                self.statuses.append(status)
                self.scored += self.ROWS if status == 200 else 0
            sent += 1

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


@pytest.mark.long
def test_a_database_outage_of_two_minutes_under_load_loses_no_row(
    private_postgres: PrivatePostgres, tmp_path: Path, store: Path
) -> None:
    with (
        private_postgres.database() as url,
        serve(store, tmp_path, DATABASE_URL=url) as service,
    ):
        load = Load(service)
        try:
            wait_for(lambda: load.scored >= 1_000)
            private_postgres.stop()
            before = load.scored
            started = time.monotonic()
            wait_for(lambda: time.monotonic() - started >= OUTAGE_SECONDS, timeout=200)
            during = load.scored - before
            # Two minutes in, every row scored since is waiting, none dropped, and the log
            # says how far behind it is.
            assert metric(service, "fraud_prediction_log_dropped_total") == 0
            assert metric(service, "fraud_prediction_log_pending_rows") >= during * 0.9
            assert metric(service, "fraud_prediction_log_pending_age_seconds") > 100
        finally:
            private_postgres.start()  # the session's other tests need it running
        wait_for(lambda: load.scored - before - during >= 1_000)
        load.stop()
        print(f"{during} rows scored in the {OUTAGE_SECONDS} s outage ({during / 120:.0f}/s)")
        assert set(load.statuses) == {200}

        written, dropped = log_accounting(service, load.scored, timeout=180)
        assert (written, dropped) == (load.scored, 0)
        with open_engine(url).connect() as conn:
            ids = conn.execute(select(func.count(func.distinct(predictions.c.transaction_id))))
            assert ids.scalar_one() == written
        wait_for(lambda: metric(service, "fraud_prediction_log_pending_age_seconds") == 0)


def test_a_full_spool_drops_only_the_rows_beyond_it(
    private_postgres: PrivatePostgres, tmp_path: Path, store: Path
) -> None:
    with (
        private_postgres.database() as url,
        # About 110 single-row records a worker; a buffer smaller still.
        serve(
            store,
            tmp_path,
            DATABASE_URL=url,
            FRAUD_LOG_SPOOL_MAX_MB="0.05",
            FRAUD_LOG_CAPACITY="40",
        ) as service,
    ):
        session = requests.Session()
        private_postgres.stop()
        try:
            statuses = [
                session.post(
                    f"{service}/predict", json=transaction(transaction_id=f"f{i}"), timeout=5
                ).status_code
                for i in range(REQUESTS)
            ]
            text = requests.get(f"{service}/metrics", timeout=5).text
            unavailable = metric_sum(text, UNAVAILABLE)
            pending = metric_sum(text, "fraud_prediction_log_pending_rows")
        finally:
            private_postgres.start()
        assert statuses == [200] * REQUESTS
        assert unavailable > 0 and pending + unavailable == REQUESTS

        written, dropped = log_accounting(service, REQUESTS)
        assert (written, dropped) == (pending, unavailable)
        assert written >= 100  # a spool's worth at least
        assert count_rows(open_engine(url)) == written


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
