"""Each worker's prediction-log writer: a bounded in-memory buffer drained by one thread.

Requests only append to the buffer, so a slow or down database never delays them; rows that
do not fit, or that the database refused for longer than the retry window, are counted in
`fraud_prediction_log_dropped_total`, never silently lost.
"""

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine

from ..prediction_log import ensure_schema, insert_predictions
from . import metrics

if TYPE_CHECKING:  # the data plane imports this module to log what it scored
    from .dataplane import Scored

log = logging.getLogger(__name__)
MAX_BACKOFF = 5.0


@dataclass(frozen=True)
class LoggedBatch:
    """One scoring call as the request saw it; expanded into rows off the request path."""

    scored: "Scored"
    x: NDArray[np.float32]
    ids: list[str]
    endpoint: str
    created_at: datetime
    latency_ms: float

    def rows(self) -> list[tuple[Any, ...]]:
        """The batch as prediction-log rows, values in LOG_COLUMNS order."""
        model = self.scored.model
        head = (self.created_at, self.endpoint, self.scored.variant, model.version)
        tail = (model.threshold, self.latency_ms)
        return [
            (tid, *head, *values, p, flag, *tail)
            for tid, values, p, flag in zip(
                self.ids,
                self.x.astype(np.float64).tolist(),
                self.scored.probabilities.tolist(),
                self.scored.is_fraud.tolist(),
                strict=True,
            )
        ]


class PredictionLogWriter:
    """Bounded buffer of logged batches and the thread that writes them in transactions."""

    def __init__(
        self,
        engine_factory: Callable[[], Engine],
        *,
        capacity: int = 10_000,
        batch_rows: int = 200,
        flush_interval: float = 0.1,
        retry_window: float = 30.0,
    ) -> None:
        self._engine_factory = engine_factory
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()
        self._capacity = capacity
        self._batch_rows = batch_rows
        self._flush_interval = flush_interval
        self._retry_window = retry_window
        self._pending: deque[LoggedBatch] = deque()
        self._pending_rows = 0
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def log(self, batch: LoggedBatch) -> None:
        """Queue a batch for writing, or count its rows as dropped when the buffer is full."""
        rows = len(batch.ids)
        with self._ready:
            if self._pending_rows + rows > self._capacity:
                metrics.LOG_DROPPED.inc(rows)
                return
            self._pending.append(batch)
            self._pending_rows += rows
            # Waking the writer per request would write one-row transactions: it is woken for
            # a full batch only, and otherwise flushes every flush_interval.
            if self._pending_rows >= self._batch_rows:
                self._ready.notify()

    def start(self) -> None:
        """Start the writer thread (once per worker process)."""
        self._thread = threading.Thread(target=self._run, daemon=True, name="prediction-log")
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread after one last flush; what cannot be written in time is dropped."""
        self._stop.set()
        with self._ready:
            self._ready.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._ready:
            if self._pending_rows:
                log.warning("prediction log: %d rows unwritten at exit", self._pending_rows)
                metrics.LOG_DROPPED.inc(self._pending_rows)
            self._pending.clear()
            self._pending_rows = 0

    def engine(self) -> Engine:
        """The database engine, created on first use, with the schema ensured."""
        with self._engine_lock:  # the writer thread and /feedback may both ask first
            if self._engine is None:
                engine = self._engine_factory()
                ensure_schema(engine)
                self._engine = engine
            return self._engine

    def _take(self) -> list[LoggedBatch]:
        with self._ready:
            self._ready.wait_for(
                lambda: self._pending_rows >= self._batch_rows or self._stop.is_set(),
                self._flush_interval,
            )
            taken: list[LoggedBatch] = []
            rows = 0
            while self._pending and rows < self._batch_rows:
                batch = self._pending.popleft()
                taken.append(batch)
                rows += len(batch.ids)
            self._pending_rows -= rows
            return taken

    def _run(self) -> None:
        while not (self._stop.is_set() and not self._pending):
            taken = self._take()
            if taken:
                self._write(taken)

    def _write(self, taken: list[LoggedBatch]) -> None:
        """Write one transaction of rows, retrying with backoff inside the retry window."""
        rows = [row for batch in taken for row in batch.rows()]
        deadline = time.monotonic() + (0 if self._stop.is_set() else self._retry_window)
        delay = 0.25
        while True:
            try:
                insert_predictions(self.engine(), rows)
            except Exception as exc:  # any database failure: retry, then count as dropped
                if time.monotonic() + delay > deadline:
                    log.warning("prediction log: dropped %d rows: %s", len(rows), exc)
                    metrics.LOG_DROPPED.inc(len(rows))
                    return
                log.warning("prediction log: write failed, retrying in %.1f s: %s", delay, exc)
                if self._stop.wait(delay):
                    deadline = 0.0
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            metrics.LOG_WRITTEN.inc(len(rows))
            return
