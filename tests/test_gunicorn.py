"""The service under real gunicorn with two workers: metrics add up across workers."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from serving_helpers import metric_sum, serve, train_into, transaction


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """`fraud serve --workers 2` on a free port, against a store made by `fraud train`."""
    store = tmp_path / "store"
    train_into(store, promote=True)
    with serve(store, tmp_path) as url:
        yield url


def test_two_workers_count_every_request_once(served: str) -> None:
    session = requests.Session()
    rows = 0
    for i in range(40):
        batch = 1 + i % 4
        body = {"instances": [transaction()] * batch} if batch > 1 else transaction()
        assert session.post(f"{served}/predict", json=body, timeout=5).status_code == 200
        rows += batch
    for _ in range(7):
        assert (
            session.post(f"{served}/predict", json=transaction(V1="x"), timeout=5).status_code
            == 400
        )
    for _ in range(3):
        assert session.get(f"{served}/health", timeout=5).status_code == 200
    text = session.get(f"{served}/metrics", timeout=5).text
    assert metric_sum(text, "fraud_predictions_total") == rows
    assert metric_sum(text, "fraud_prediction_latency_seconds_count") == 40
    assert metric_sum(text, "fraud_request_errors_total") == 7
    assert 'fraud_model_info{alias="champion",model_version="1"} 1.0' in text
    health = re.search(
        r'^flask_http_request_duration_seconds_count\{[^}]*url_rule="/health"[^}]*\} (\S+)$',
        text,
        re.M,
    )
    assert health and float(health.group(1)) == 3
    assert 'url_rule="/predict"' not in text, "scoring routes have their own latency metric"
