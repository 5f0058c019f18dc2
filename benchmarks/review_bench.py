"""The review queue on a big log: 10,000 alerts among 1M logged rows (SQLite and PostgreSQL).

Fills a log with real feature rows of the dataset (new transaction ids, event and receive times
over the last 6.9 days), 1% of them alerts with a stored explanation and 30% of every kind
labelled (a third of the alerts reviewed), then times what the analyst waits for: the queue's
query alone, and whole pages through the service's own Flask app (signed in, rendered): the
queue's first page, a deep page, the day, version and transaction-id filters, and an alert's
page (its neighbours and labels). The first request of each is reported apart (cold), then
the median and the slowest of 20. Results go to benchmarks/RESULTS.md.
Usage: nice -n 10 python benchmarks/review_bench.py [--rows 1000000] [--alerts 10000]
       [--dbs sqlite,postgresql] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, func, select, text

from fraud_detection.config import Settings
from fraud_detection.data import load_dataset
from fraud_detection.prediction_log import (
    LOG_COLUMNS,
    ensure_schema,
    insert_predictions,
    open_engine,
    predictions,
    store_labels,
    utc_now,
)
from fraud_detection.schema import FEATURES
from fraud_detection.serving import close_app, create_app
from fraud_detection.serving.review.queries import QueueFilter, queue_page
from results import write_section
from train_bench import DEFAULT_DATA

NAME = "Review queue"
SPAN_SECONDS = int(6.9 * 86_400)
CHUNK = 100_000
THRESHOLD = 0.43
LABELLED = 0.3
REPEATS = 20
TARGET_MS = 200.0


def fill(url: str, data: pd.DataFrame, rows: int, alerts: int) -> None:
    """`rows` predictions of real feature rows, `alerts` of them flagged, 30% labelled."""
    engine = open_engine(url)
    ensure_schema(engine)
    rng = np.random.default_rng(0)
    x = data.loc[:, list(FEATURES)].to_numpy(dtype=np.float64)
    flagged = np.zeros(rows, dtype=bool)
    flagged[rng.choice(rows, size=alerts, replace=False)] = True
    now = utc_now()
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        source = rng.integers(0, len(x), n)
        ages = rng.integers(0, SPAN_SECONDS, n)
        flags = flagged[start : start + n]
        scores = np.where(flags, rng.uniform(THRESHOLD, 1.0, n), rng.beta(0.3, 30, n))
        batch = []
        for i in range(n):
            values = {
                "transaction_id": f"r{start + i}",
                "created_at": now - timedelta(seconds=int(ages[i])),
                "endpoint": "predict",
                "variant": "champion",
                "model_version": "1",
                **dict(zip(FEATURES, x[source[i]].tolist(), strict=True)),
                "probability": float(scores[i]),
                "is_fraud": bool(flags[i]),
                "threshold": THRESHOLD,
                "latency_ms": 1.0,
                "explanation": _explanation(x[source[i]]) if flags[i] else None,
                # Sent by the caller: the authorisation a moment before it was scored.
                "event_time": now - timedelta(seconds=int(ages[i]) + 2),
            }
            batch.append(tuple(values[c] for c in LOG_COLUMNS))
        insert_predictions(engine, batch)
        labelled = np.flatnonzero(rng.random(n) < LABELLED)
        store_labels(engine, {f"r{start + i}": int(rng.random() < 0.5) for i in labelled})
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:  # as the service's small transactions keep the WAL
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE predictions"))
            conn.execute(text("VACUUM ANALYZE feedback"))
    engine.dispose()


def _explanation(row: np.ndarray) -> str:
    top = np.argsort(-np.abs(row[1:29]))[:5] + 1
    return json.dumps(
        {
            "output": "probability",
            "expected_value": 0.002,
            "top_features": [
                {"feature": FEATURES[i], "value": float(row[i]), "contribution": 0.1 / (k + 1)}
                for k, i in enumerate(top)
            ],
        }
    )


def timed(call: Callable[[], Any]) -> tuple[float, list[float]]:
    """Milliseconds of the first call, then of REPEATS more."""
    started = time.perf_counter()
    call()
    cold = (time.perf_counter() - started) * 1000
    warm = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        call()
        warm.append((time.perf_counter() - started) * 1000)
    return cold, warm


def measure(url: str, workdir: Path) -> tuple[dict[str, int], list[tuple[str, float, list[float]]]]:
    """The log's counts and the timings of each page (and of the queue's query alone)."""
    engine = open_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(predictions)).scalar_one()
        alerts = conn.execute(select(func.count()).where(QueueFilter("all").where())).scalar_one()
        left = conn.execute(select(func.count()).where(QueueFilter("open").where())).scalar_one()
    counts = {"rows": int(rows), "alerts": int(alerts), "open": int(left)}
    found: list[tuple[str, float, list[float]]] = []
    cold, warm = timed(lambda: queue_page(engine, QueueFilter()))
    found.append(("queue query, first page (no HTTP)", cold, warm))
    store = workdir / "empty-store"
    store.mkdir(exist_ok=True)
    settings = Settings(
        model_store=str(store),
        serving_cache=workdir / "cache",
        database_url=url,
        reload_interval=3600,
        log_spool_dir=workdir / "spool",
    )
    app = create_app(settings)
    try:
        client = app.test_client()
        form = client.get("/review/sign-in").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf
        client.post("/review/sign-in", data={"csrf": csrf.group(1), "name": "bench"})
        first = client.get("/review")
        assert first.status_code == 200, first.status_code
        alert_id = re.findall(r"/review/alerts/(\d+)", first.text)[0]
        today = utc_now().date().isoformat()
        pages = [
            ("GET /review (first page)", "/review"),
            ("GET /review?page=20", "/review?page=20"),
            ("GET /review?day=today", f"/review?day={today}"),
            ("GET /review?version=1&status=all", "/review?version=1&status=all"),
            ("GET /review?q=r12345 (id prefix)", "/review?q=r12345"),
            ("GET /review/alerts/<first>", f"/review/alerts/{alert_id}"),
        ]
        for label, path in pages:

            def get(path: str = path) -> None:
                answer = client.get(path)
                assert answer.status_code == 200, (path, answer.status_code)

            cold, warm = timed(get)
            found.append((label, cold, warm))
    finally:
        close_app(app)
        engine.dispose()
    return counts, found


def section(results: dict[str, tuple[dict[str, int], list[Any], float]]) -> str:
    lines = [
        "What an analyst waits for on a log of real feature rows, 1% of them alerts and 30% of "
        "every kind labelled. Queue query alone, then whole pages through the service's own "
        "Flask app (signed in, rendered, no network): the first request (cold) and the median "
        f"and slowest of {REPEATS} more. Target: the first page under {TARGET_MS:.0f} ms.",
        "",
        "| log | rows | alerts | open | what | cold | median | slowest |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for database, (counts, timings, _) in results.items():
        for label, cold, warm in timings:
            lines.append(
                f"| {database} | {counts['rows']:,} | {counts['alerts']:,} | {counts['open']:,} | "
                f"{label} | "
                f"{cold:.1f} ms | {statistics.median(warm):.1f} ms | {max(warm):.1f} ms |"
            )
    lines.append("")
    for database, (_, _, fill_s) in results.items():
        lines.append(f"- {database}: filled in {fill_s:.0f} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--dbs", default="sqlite,postgresql")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "review_bench"
    )
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    data = load_dataset(str(args.data))
    command = "nice -n 10 python benchmarks/review_bench.py " + " ".join(sys.argv[1:])
    admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    results: dict[str, tuple[dict[str, int], list[Any], float]] = {}
    for database in args.dbs.split(","):
        if database == "sqlite":
            for leftover in args.workdir.glob("log.db*"):
                leftover.unlink()
            url = f"sqlite:///{args.workdir / 'log.db'}"
        else:
            with admin.connect() as conn:
                conn.execute(text("DROP DATABASE IF EXISTS fraud_review_bench WITH (FORCE)"))
                conn.execute(text("CREATE DATABASE fraud_review_bench"))
            url = args.postgres.rsplit("/", 1)[0] + "/fraud_review_bench"
        try:
            started = time.perf_counter()
            fill(url, data, args.rows, args.alerts)
            fill_s = time.perf_counter() - started
            counts, timings = measure(url, args.workdir)
            results[database] = (counts, timings, fill_s)
            write_section(NAME, command, section(results))
            for label, cold, warm in timings:
                median = statistics.median(warm)
                print(f"{database} {label}: cold {cold:.1f} ms, median {median:.1f} ms")
        finally:
            if database == "sqlite":
                for leftover in args.workdir.glob("log.db*"):
                    leftover.unlink()
            else:
                with admin.connect() as conn:
                    conn.execute(text("DROP DATABASE IF EXISTS fraud_review_bench WITH (FORCE)"))


if __name__ == "__main__":
    main()
