"""The least /predict can cost with its duties (benchmark only): how close the service is to it.

Each request does what ours does with everything on, in plain WSGI and the fewest Python steps
this author could write: the content type checked; the body parsed by orjson and validated by the
service's own pydantic model (the API's promise); the row checked against the float32 range;
scored by onnxruntime on the same ONNX file; decided against the threshold; five metric
updates in prometheus_client's multiprocess mode (HTTP latency and count, the decision's
count, the score, the scoring latency: as many as ours); the log row appended to a crash spool
file with one write(2) and queued for a thread that inserts 50 rows a statement into SQLite
(WAL, synchronous=NORMAL, the same columns) and marks them done in the spool; the answer
serialised by orjson. What it leaves out, and ours keeps: routing to a challenger or canary,
hot reload, explanations, event times, batches, the spool's bound and replay, outage handling,
error bodies, auth. So its cost is a floor under ours, not a competitor.

Settings: BENCH_STORE and BENCH_CACHE (the model), BENCH_DB (the SQLite file), BENCH_SPOOL (a
folder), PROMETHEUS_MULTIPROC_DIR.
"""

import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from operator import attrgetter
from typing import Any

import numpy as np
import orjson
from prometheus_client import Counter, Histogram

from fraud_detection.inference import onnx_session
from fraud_detection.log_record import LOG_COLUMNS
from fraud_detection.registry import Registry
from fraud_detection.schema import FEATURES
from fraud_detection.serving.codecs import FLOAT32_MAX, Transaction
from fraud_detection.store import open_store

registry = Registry(open_store(os.environ["BENCH_STORE"]), "fraud-detector")
folder = registry.download("champion", os.environ["BENCH_CACHE"])
manifest = registry.manifest("champion")
session = onnx_session((folder / "model.onnx").read_bytes())
threshold = float(manifest["threshold"])
threshold32 = np.float32(threshold)
version = str(manifest["version"])
features = attrgetter(*FEATURES)

HTTP_LATENCY = Histogram("lean_http_seconds", "", ["method", "path", "status"]).labels(
    "POST", "/predict", "200"
)
HTTP_REQUESTS = Counter("lean_http_requests", "", ["method", "status"]).labels("POST", "200")
PREDICTIONS = Counter("lean_predictions", "", ["version", "outcome"])
FRAUD, LEGIT = PREDICTIONS.labels(version, "fraud"), PREDICTIONS.labels(version, "legit")
SCORE = Histogram("lean_score", "", ["version"]).labels(version)
LATENCY = Histogram("lean_latency_seconds", "", ["version"]).labels(version)

ROWS = 50
COLUMNS = ", ".join(f'"{c}"' for c in LOG_COLUMNS)
MARKS = "(" + ", ".join("?" * len(LOG_COLUMNS)) + ")"
database = sqlite3.connect(os.environ["BENCH_DB"], check_same_thread=False)
database.execute("PRAGMA journal_mode=WAL")
database.execute("PRAGMA synchronous=NORMAL")
database.execute(f"CREATE TABLE IF NOT EXISTS predictions ({COLUMNS})")
spool = os.open(
    os.path.join(os.environ["BENCH_SPOOL"], f"{os.getpid()}.spool"),
    os.O_WRONLY | os.O_CREAT | os.O_APPEND,
)
pending: deque[tuple[Any, ...]] = deque()
ready = threading.Condition()


def write_log() -> None:
    """Every 0.1 s: insert what waits, 50 rows a statement, then mark it done in the spool."""
    while True:
        with ready:
            ready.wait(0.1)
            rows = [pending.popleft() for _ in range(len(pending))]
        if not rows:
            continue
        whole = len(rows) - len(rows) % ROWS
        with database:
            many = f"INSERT INTO predictions VALUES {MARKS}" + f", {MARKS}" * (ROWS - 1)
            for start in range(0, whole, ROWS):
                database.execute(many, [v for row in rows[start : start + ROWS] for v in row])
            database.executemany(f"INSERT INTO predictions VALUES {MARKS}", rows[whole:])
        os.write(spool, b"\nD %d" % len(rows))


threading.Thread(target=write_log, daemon=True).start()
JSON = [("Content-Type", "application/json")]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """POST /predict only (the benchmark sends nothing else)."""
    started = time.perf_counter()
    if environ.get("CONTENT_TYPE") != "application/json":
        start_response("415 Unsupported Media Type", JSON)
        return [b'{"error": "content type"}']
    body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
    transaction = Transaction.model_validate(orjson.loads(body))
    values = features(transaction)
    if max(map(abs, values)) > FLOAT32_MAX:
        start_response("400 Bad Request", JSON)
        return [b'{"error": "range"}']
    (probabilities,) = session.run(["probabilities"], {"input": np.array([values], np.float32)})
    probability = float(probabilities[0, 1])
    is_fraud = bool(probabilities[0, 1] >= threshold32)
    (FRAUD if is_fraud else LEGIT).inc()
    SCORE.observe(probability)
    tid = transaction.transaction_id
    latency = time.perf_counter() - started
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    row = (tid, now, "predict", "champion", version, *values)
    row += (probability, is_fraud, threshold, latency * 1000, None, None)
    os.write(spool, b"\nB " + orjson.dumps(row))
    with ready:
        pending.append(row)
    LATENCY.observe(latency)
    answer = {
        "transaction_id": tid,
        "fraud_probability": round(probability, 6),
        "is_fraud": is_fraud,
        "threshold": threshold,
        "model_version": version,
    }
    out = orjson.dumps(answer)
    start_response("200 OK", [*JSON, ("Content-Length", str(len(out)))])
    HTTP_LATENCY.observe(time.perf_counter() - started)
    HTTP_REQUESTS.inc()
    return [out]
