"""PostgreSQL stopped in the middle of a load under gunicorn: no request fails, no row is lost
unaccounted (written rows plus the dropped counter equal the transactions scored)."""

import time
from pathlib import Path

import requests
from sqlalchemy import func, select

from fraud_detection.prediction_log import open_engine, predictions
from postgres_helpers import PrivatePostgres
from serving_helpers import metric_sum, serve, train_into, transaction

REQUESTS = 300


def test_database_outage_mid_load_fails_no_request_and_loses_no_row_silently(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    train_into(store, promote=True)
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
        deadline = time.monotonic() + 60
        while True:
            text = session.get(f"{service}/metrics", timeout=5).text
            written = metric_sum(text, "fraud_prediction_log_written_total")
            dropped = metric_sum(text, "fraud_prediction_log_dropped_total")
            if written + dropped == REQUESTS or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        with engine.connect() as conn:
            in_db = conn.execute(select(func.count()).select_from(predictions)).scalar_one()
        assert (written, dropped) != (REQUESTS, 0), "the outage should have cost some rows"
        assert written + dropped == REQUESTS
        assert in_db == written
