"""Prediction-log rows for the review queue's tests, written straight into a log."""

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from fraud_detection.prediction_log import LOG_COLUMNS, insert_predictions, utc_now
from fraud_detection.schema import FEATURES

EXPLANATION = {
    "output": "probability",
    "expected_value": 0.002,
    "top_features": [
        {"feature": "V14", "value": -6.29, "contribution": 0.31},
        {"feature": "V10", "value": -4.1, "contribution": 0.12},
        {"feature": "Amount", "value": 1.0, "contribution": -0.04},
    ],
}


def prediction(
    transaction_id: str,
    probability: float,
    *,
    age: timedelta = timedelta(0),
    threshold: float = 0.5,
    variant: str = "champion",
    version: str = "1",
    at: datetime | None = None,
    event_time: datetime | None = None,
) -> dict[str, Any]:
    """One logged prediction: flagged when `probability` reaches `threshold`."""
    flagged = probability >= threshold
    return {
        "transaction_id": transaction_id,
        "created_at": (at or utc_now()) - age,
        "endpoint": "predict",
        "variant": variant,
        "model_version": version,
        **{name: 0.25 * i for i, name in enumerate(FEATURES)},
        "probability": probability,
        "is_fraud": flagged,
        "threshold": threshold,
        "latency_ms": 1.0,
        "explanation": json.dumps(EXPLANATION) if flagged else None,
        "event_time": event_time,
    }


def log_predictions(engine: Engine, rows: list[dict[str, Any]]) -> None:
    insert_predictions(engine, [tuple(row[c] for c in LOG_COLUMNS) for row in rows])
