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

from fraud_detection.log_record import LOG_COLUMNS, LoggedBatch
from fraud_detection.prediction_log import count_rows, ensure_schema, open_engine, utc_now
from fraud_detection.serving.log_spool import Spool, batch_record, replay
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


class FullDisk:
    """A SQLite log whose disk is full (the schema fits, no row does) until `free()`."""

    def __init__(self, url: str) -> None:
        engine = open_engine(url)
        ensure_schema(engine)
        with engine.connect() as conn:
            self.pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        engine.dispose()
        self.url = url

    def engine(self) -> Engine:
        engine = open_engine(self.url)

        @event.listens_for(engine, "checkout")
        def room(connection: Any, _record: Any, _proxy: Any) -> None:
            connection.execute(f"PRAGMA max_page_count = {self.pages}")

        return engine

    def free(self) -> None:
        self.pages = 2**30


def test_in_an_outage_rows_wait_and_only_those_beyond_the_spool_are_dropped(
    tmp_path: Path, writers: list[PredictionLogWriter], caplog: pytest.LogCaptureFixture
) -> None:
    disk = FullDisk(f"sqlite:///{tmp_path / 'full.db'}")
    batches = [batch([f"r{i:02d}-{j:03d}" for j in range(200)]) for i in range(50)]
    first = batch([f"first-{j:03d}" for j in range(200)])
    # Room for the first batch and 30 more: memory takes 4 of them, the spool all 30.
    bound = len(batch_record(first)) + 30 * len(batch_record(batches[0]))
    pending, dropped = (
        sample("fraud_prediction_log_pending_rows"),
        sample("fraud_prediction_log_dropped_total", reason="unavailable"),
    )
    writer = start(writers, disk.engine, tmp_path, capacity=1_000, spool_max_bytes=bound)
    writer.log(first)
    wait_for(lambda: "write failed" in caplog.text)

    for logged in batches:
        writer.log(logged)

    # Counted at once: the 20 batches beyond the spool's bound, and only those...
    assert sample("fraud_prediction_log_dropped_total", reason="unavailable") - dropped == 4_000
    assert sample("fraud_prediction_log_pending_rows") - pending == 6_200
    # ...the others wait (no retry window ends), and are written in order once it is back.
    wait_for(lambda: sample("fraud_prediction_log_pending_age_seconds") > 3)
    assert sample("fraud_prediction_log_pending_rows") - pending == 6_200
    assert sample("fraud_prediction_log_dropped_total", reason="unavailable") - dropped == 4_000
    disk.free()
    wait_for(lambda: sample("fraud_prediction_log_pending_rows") == pending, timeout=30)
    with open_engine(disk.url).connect() as conn:
        stored = conn.execute(text("SELECT transaction_id FROM predictions ORDER BY id"))
        written = [row[0] for logged in [first, *batches[:30]] for row in logged.rows()]
        assert list(stored.scalars()) == written
    assert sample("fraud_prediction_log_dropped_total", reason="unavailable") - dropped == 4_000
    wait_for(lambda: sample("fraud_prediction_log_pending_age_seconds") == 0)
    assert sum(p.stat().st_size for p in (tmp_path / "spool").rglob("*.spool")) == 0


def test_a_writer_stopped_in_an_outage_leaves_its_rows_to_the_next(
    tmp_path: Path, writers: list[PredictionLogWriter], caplog: pytest.LogCaptureFixture
) -> None:
    disk = FullDisk(f"sqlite:///{tmp_path / 'log.db'}")
    shutdown = sample("fraud_prediction_log_dropped_total", reason="shutdown")
    writer = start(writers, disk.engine, tmp_path, capacity=300)
    for i in range(5):
        writer.log(batch([f"s{i}-{j}" for j in range(200)]))  # some of them on disk only
    wait_for(lambda: "write failed" in caplog.text)
    writer.close()
    assert sample("fraud_prediction_log_dropped_total", reason="shutdown") == shutdown
    disk.free()
    written = sample("fraud_prediction_log_written_total")

    start(writers, disk.engine, tmp_path)

    wait_for(lambda: sample("fraud_prediction_log_written_total") - written == 1_000)
    assert count_rows(open_engine(disk.url)) == 1_000


def test_a_spool_replays_only_rows_not_marked_done_and_skips_a_cut_record(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=2**20)
    explained = {1: {"output": "probability", "top_features": [{"feature": "V14"}]}}
    first = batch(["a", "b", "c"])
    second = batch(["d", "e"], endpoint="v2_infer", explanations=explained)
    place = spool.append(batch_record(first), 3)
    assert place is not None
    segment = place.segment
    spool.append(batch_record(second), 2)
    spool.done(segment, 2)
    cut = batch_record(batch(["f"]))[:-5]  # a record a full disk cut short
    with segment.path.open("ab") as file:
        file.write(cut)

    rows = replay(segment.path.read_bytes())

    assert [row[0] for row in rows] == ["c", "d", "e"]
    assert rows == first.rows()[2:] + second.rows()
    explanation = LOG_COLUMNS.index("explanation")
    assert [row[explanation] for row in rows] == [None, None, orjson.dumps(explained[1]).decode()]


def test_rows_spooled_before_the_explanation_column_replay_without_one(tmp_path: Path) -> None:
    from fraud_detection.serving.log_spool import rows_record

    (row,) = batch(["old"]).rows()
    older = rows_record([row[:-1]])  # as a version without the column spooled it
    assert replay(older) == [row]


CRASHING_WORKER = """
import sys, time
from pathlib import Path
from test_prediction_log_writer import FullDisk, batch
from fraud_detection.serving.log_writer import PredictionLogWriter
from fraud_detection.sql_sink import SqlSink
sink = SqlSink(FullDisk(sys.argv[1]).engine)
writer = PredictionLogWriter(sink, spool_dir=Path(sys.argv[2]))
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
