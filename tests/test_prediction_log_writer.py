"""The prediction-log writer against real databases: refused rows, a failing database, the spool."""

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, event, text

from fraud_detection.log_record import LoggedBatch
from fraud_detection.prediction_log import count_rows, ensure_schema, open_engine, utc_now
from fraud_detection.serving.log_spool import replay
from fraud_detection.serving.log_writer import PredictionLogWriter
from fraud_detection.sql_sink import SqlSink
from waiting import wait_for


def batch(
    ids: list[str], endpoint: str = "predict", explanations: dict[int, Any] | None = None
) -> LoggedBatch:
    """A logged batch of len(ids) rows with distinct features and probabilities."""
    n = len(ids)
    # Slices, as a request's parts are: not C-contiguous.
    x = (np.arange(n * 60, dtype=np.float32).reshape(n, 60) / 7)[:, ::2]
    p = np.linspace(0, 1, 2 * n, dtype=np.float32)[::2]
    return LoggedBatch(
        ids, x, p, p >= 0.5, 0.5, "7", "champion", endpoint, utc_now(), 1.5, explanations or {}
    )


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def writers(tmp_path: Path) -> Iterator[list[PredictionLogWriter]]:
    """Writers a test starts; closed after it."""
    started: list[PredictionLogWriter] = []
    yield started
    for writer in started:
        writer.close()


def start(
    writers: list[PredictionLogWriter], factory: Callable[[], Engine], tmp_path: Path, **kw: Any
) -> PredictionLogWriter:
    writer = PredictionLogWriter(SqlSink(factory), spool_dir=tmp_path / "spool", **kw)
    writer.start()
    writers.append(writer)
    return writer


def test_a_refused_row_never_takes_the_others_with_it(
    database_url: str, tmp_path: Path, writers: list[PredictionLogWriter]
) -> None:
    # Each is refused by PostgreSQL (NUL, over 128 characters, not encodable); SQLite stores
    # any text, but no driver can encode a lone surrogate.
    bad = {"nul\x00id", "x" * 200, "\ud800"}
    refused = bad if database_url.startswith("postgresql") else {"\ud800"}
    ids = [f"good-{i}" for i in range(1000)]
    for i, tid in enumerate(sorted(bad)):
        ids.insert(150 + 300 * i, tid)
    engine = open_engine(database_url)
    written, rejected = (
        sample("fraud_prediction_log_written_total"),
        sample("fraud_prediction_log_dropped_total", reason="rejected"),
    )
    writer = start(writers, lambda: open_engine(database_url), tmp_path)

    writer.log(batch(ids[:500]))
    writer.log(batch(ids[500:]))

    # Well inside the 30 s retry window: the good rows are not held back by the bad ones.
    wait_for(
        lambda: sample("fraud_prediction_log_written_total") - written == 1003 - len(refused),
        timeout=10,
    )
    assert sample("fraud_prediction_log_dropped_total", reason="rejected") - rejected == len(
        refused
    )
    with engine.connect() as conn:
        stored = set(conn.execute(text("SELECT transaction_id FROM predictions")).scalars())
    assert stored == set(ids) - refused


def full_disk(url: str) -> Callable[[], Engine]:
    """An engine factory for a SQLite log whose disk is full: the schema fits, no row does."""
    engine = open_engine(url)
    ensure_schema(engine)
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()

    def factory() -> Engine:
        full = open_engine(url)

        @event.listens_for(full, "connect")
        def no_room(connection: Any, _record: Any) -> None:
            connection.execute(f"PRAGMA max_page_count = {pages}")

        return full

    return factory


def test_waiting_rows_are_shown_and_a_failing_database_drops_them_at_once(
    tmp_path: Path, writers: list[PredictionLogWriter]
) -> None:
    factory = full_disk(f"sqlite:///{tmp_path / 'full.db'}")
    pending, dropped = (
        sample("fraud_prediction_log_pending_rows"),
        sample("fraud_prediction_log_dropped_total", reason="unavailable"),
    )
    writer = start(writers, factory, tmp_path, capacity=50_000, retry_window=3.0)

    for i in range(100):
        writer.log(batch([f"r{i}-{j}" for j in range(200)]))

    # Visible at once (the writer is still inside its retry window)...
    assert sample("fraud_prediction_log_pending_rows") - pending == 20_000
    # ...and all counted when the window ends, not one write batch per window.
    wait_for(
        lambda: (
            sample("fraud_prediction_log_dropped_total", reason="unavailable") - dropped == 20_000
        ),
        timeout=15,
    )
    assert sample("fraud_prediction_log_pending_rows") == pending
    # Rows arriving while the failure lasts are counted within seconds too.
    writer.log(batch([f"late-{j}" for j in range(200)]))
    wait_for(
        lambda: (
            sample("fraud_prediction_log_dropped_total", reason="unavailable") - dropped == 20_200
        ),
        timeout=15,
    )


def test_a_spool_replays_only_rows_not_marked_done_and_skips_a_cut_record(
    tmp_path: Path,
) -> None:
    from fraud_detection.serving.log_spool import Spool, batch_record

    spool = Spool(tmp_path / "spool")
    explained = {1: {"output": "probability", "top_features": [{"feature": "V14"}]}}
    first = batch(["a", "b", "c"])
    second = batch(["d", "e"], endpoint="v2_infer", explanations=explained)
    segment = spool.append(batch_record(first), 3)
    assert segment is not None
    spool.append(batch_record(second), 2)
    spool.done(segment, 2)
    cut = batch_record(batch(["f"]))[:-5]  # a record a full disk cut short
    with segment.path.open("ab") as file:
        file.write(cut)

    rows = replay(segment.path.read_bytes())

    assert [row[0] for row in rows] == ["c", "d", "e"]
    assert rows == first.rows()[2:] + second.rows()
    assert [row[-1] for row in rows] == [None, None, orjson.dumps(explained[1]).decode()]


def test_rows_spooled_before_the_explanation_column_replay_without_one(tmp_path: Path) -> None:
    from fraud_detection.serving.log_spool import rows_record

    (row,) = batch(["old"]).rows()
    older = rows_record([row[:-1]])  # as a version without the column spooled it
    assert replay(older) == [row]


CRASHING_WORKER = """
import sys, time
from pathlib import Path
from test_prediction_log_writer import batch, full_disk
from fraud_detection.serving.log_writer import PredictionLogWriter
from fraud_detection.sql_sink import SqlSink
sink = SqlSink(full_disk(sys.argv[1]))
writer = PredictionLogWriter(sink, spool_dir=Path(sys.argv[2]), retry_window=600)
writer.start()
writer.log(batch([f"spooled-{i}" for i in range(300)]))
print("logged", flush=True)
time.sleep(600)
"""


def test_rows_of_a_killed_worker_are_written_by_the_next_writer(
    tmp_path: Path, writers: list[PredictionLogWriter]
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    # A worker whose database is full holds its rows, and is killed outright.
    worker = subprocess.Popen(
        [sys.executable, "-c", CRASHING_WORKER, url, str(tmp_path / "spool")],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},  # this module, importable
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdout is not None and worker.stdout.readline() == "logged\n"
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    written = sample("fraud_prediction_log_written_total")

    start(writers, lambda: open_engine(url), tmp_path)

    wait_for(lambda: sample("fraud_prediction_log_written_total") - written == 300)
    assert count_rows(open_engine(url)) == 300
    assert list((tmp_path / "spool").rglob("*.spool")) != []  # the new writer's own, drained
