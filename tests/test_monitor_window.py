"""Monitoring in bounded memory: the counts aggregated in SQL judge exactly as the window read
into memory does, on SQLite and PostgreSQL."""

from datetime import timedelta
from typing import Any

import numpy as np

from fraud_detection.log_record import LOG_COLUMNS
from fraud_detection.monitoring import (
    DriftRule,
    count_log,
    evaluate,
    judge,
    metrics_by_variant,
    variant_metrics,
)
from fraud_detection.prediction_log import (
    ensure_schema,
    insert_predictions,
    open_engine,
    read_window,
    store_labels,
    utc_now,
)
from fraud_detection.reference import build_reference
from fraud_detection.schema import FEATURES
from fraud_detection.sql_sink import open_sink

MANIFEST: dict[str, Any] = {"version": 4, "model_features": list(FEATURES[1:]),
                            "metrics": {"test": {"f1": 0.8}}}  # fmt: skip
RULE = DriftRule(min_rows=50, min_labelled=20, min_labelled_frauds=5, min_flags=2.0)


def logged_rows(rows: int, seed: int) -> list[tuple[Any, ...]]:
    """Served rows of versions 4 and 3, shadow rows of version 5, one a minute until now (the
    oldest a day ago), the newest with values on the reference's bin edges, and transactions
    scored twice."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES)))
    probability = rng.beta(0.5, 20, size=rows)
    # Values exactly on an edge must fall in the same bin in SQL as in numpy.
    x[-20:, 1] = 0.0
    probability[-20:] = np.repeat([0.01, 0.5], 10)
    variants = rng.choice(["champion", "challenger", "shadow"], size=rows, p=[0.7, 0.1, 0.2])
    versions = {"champion": "4", "challenger": "3", "shadow": "5"}
    now = utc_now()
    out = []
    for i in range(rows):
        values = {
            **dict(zip(FEATURES, x[i].tolist(), strict=True)),
            "transaction_id": f"t{i % (rows - 5)}",  # the last 5 rescore earlier transactions
            "created_at": now - timedelta(minutes=rows - i),
            "endpoint": "predict",
            "variant": str(variants[i]),
            "model_version": versions[str(variants[i])],
            "probability": float(probability[i]),
            "is_fraud": bool(probability[i] >= 0.05),
            "threshold": 0.05,
            "latency_ms": 1.0,
            "explanation": None,
            "event_time": None,
        }
        out.append(tuple(values[c] for c in LOG_COLUMNS))
    return out


def test_counts_in_sql_judge_exactly_as_the_window_in_memory(database_url: str) -> None:
    rng = np.random.default_rng(1)
    edges_hit = rng.normal(size=(5_000, len(FEATURES)))
    edges_hit[:, 1] = np.round(edges_hit[:, 1], 1)  # 0.0 becomes an edge of V1's bins
    reference = build_reference(edges_hit, FEATURES, rng.beta(0.5, 20, size=5_000), 0.05)
    assert 0.0 in reference["features"]["V1"]["edges"]
    engine = open_engine(database_url)
    ensure_schema(engine)
    rows = logged_rows(1_500, seed=2)
    insert_predictions(engine, rows)
    labels = {f"t{i}": int(rng.random() < 0.1) for i in range(0, 1_495, 2)}
    store_labels(engine, labels)
    start, end = utc_now() - timedelta(days=1), utc_now()

    window = read_window(engine, start)
    assert 1_000 < len(window) < len(rows)
    served = window[window["variant"] != "shadow"]
    expected = evaluate(served, reference, MANIFEST, RULE, period=(start, end))
    counts, variants = count_log(open_sink(database_url), start, reference, "4")
    result = judge(counts, reference, MANIFEST, RULE, period=(start, end))

    assert result.to_json() == expected.to_json()
    assert metrics_by_variant(variants) == variant_metrics(window)
    assert expected.score_psi is not None and expected.feature_psi["V1"] is not None
    assert set(variant_metrics(window)) == {"challenger v3", "champion v4", "shadow v5"}


def test_counts_of_an_empty_log_judge_nothing(database_url: str) -> None:
    reference = build_reference(np.zeros((10, len(FEATURES))), FEATURES, np.zeros(10), 0.5)
    counts, variants = count_log(open_sink(database_url), utc_now(), reference, "1")
    assert variants == {} and counts.served.rows == 0 and counts.scored == 0
    assert judge(counts, reference, MANIFEST).metrics["predicted_fraud_rate"] is None
