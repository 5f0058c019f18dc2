"""Each worker's prediction-log writer: a bounded in-memory buffer drained by one thread into
a `PredictionSink` (the database).

Requests only append to the buffer and the worker's spool file, so a slow or down sink never
delays them. Every row is written, or counted in `fraud_prediction_log_dropped_total` with its
reason: the buffer was full, the sink failed for longer than the retry window, the sink
refused the row's values (found by bisecting its batch: it never takes other rows with it), or
the worker stopped first. Rows of a worker killed outright stay in its spool, and the next
writer to start writes them.
"""

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ..log_record import LoggedBatch, Row
from ..prediction_sink import PredictionSink, RefusedRows
from . import metrics
from .log_spool import (
    Segment,
    Spool,
    batch_record,
    orphan,
    orphans,
    replay,
    rows_record,
    spool_folder,
)

log = logging.getLogger(__name__)
MAX_BACKOFF = 5.0


@dataclass(frozen=True)
class _Queued:
    """Rows waiting in the buffer: a request's batch, or rows replayed from a dead worker's
    spool; `segment` is the spool file holding them (None if the spool could not take them)."""

    source: LoggedBatch | list[Row]
    size: int
    segment: Segment | None

    def rows(self) -> list[Row | None]:
        """Its rows; None for each when they cannot be built (refused like a bad value)."""
        if isinstance(self.source, list):
            return list(self.source)
        try:
            return list(self.source.rows())
        except Exception:  # a malformed batch must not stop the writer: its rows are refused
            log.exception("prediction log: a batch's rows could not be built")
            return [None] * self.size


class _Progress:
    """Marks a group's rows done, oldest first, in the spool files their batches came from."""

    def __init__(self, taken: list[_Queued], spool: Spool | None) -> None:
        self._left = deque((q.segment, q.size) for q in taken)
        self._spool = spool

    def done(self, rows: int) -> None:
        while rows:
            segment, left = self._left[0]
            n = min(rows, left)
            if segment is not None and self._spool is not None:
                self._spool.done(segment, n)
            rows -= n
            if n == left:
                self._left.popleft()
            else:
                self._left[0] = (segment, left - n)


class PredictionLogWriter:
    """Bounded buffer of logged batches and the thread that writes them to a sink. Without
    `spool_dir`, rows are in memory only (a killed worker loses them)."""

    def __init__(
        self,
        sink: PredictionSink,
        *,
        capacity: int = 10_000,
        batch_rows: int = 200,
        flush_interval: float = 0.1,
        retry_window: float = 30.0,
        spool_dir: Path | None = None,
    ) -> None:
        self.sink = sink
        self._capacity = capacity
        self._batch_rows = batch_rows
        self._flush_interval = flush_interval
        self._retry_window = retry_window
        self._spool_dir = spool_dir
        self._spool: Spool | None = None
        self._pending: deque[_Queued] = deque()
        self._pending_rows = 0
        self._failing_since: float | None = None
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def log(self, batch: LoggedBatch) -> None:
        """Queue a batch for writing, or count its rows as dropped when the buffer is full."""
        rows = len(batch.ids)
        record = self._record(batch) if self._spool is not None else None
        with self._ready:
            if self._pending_rows + rows > self._capacity:
                metrics.LOG_DROPPED.labels("buffer_full").inc(rows)
                return
            segment = self._spool.append(record, rows) if self._spool and record else None
            self._pending.append(_Queued(batch, rows, segment))
            self._pending_rows += rows
            # Waking the writer per request would write one-row transactions: it is woken for
            # a full batch only, and otherwise flushes every flush_interval.
            if self._pending_rows >= self._batch_rows:
                self._ready.notify()
        metrics.LOG_PENDING.inc(rows)

    def start(self) -> None:
        """Open this worker's spool and start the writer thread (once per worker process)."""
        self._spool = self._open_spool()
        self._thread = threading.Thread(target=self._run, daemon=True, name="prediction-log")
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread after one last flush; what cannot be written in time is dropped."""
        self._stop.set()
        with self._ready:
            self._ready.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        left = self._drop_buffer("shutdown")
        if left:
            log.warning("prediction log: %d rows unwritten at exit", left)
        if self._spool is not None and not (self._thread and self._thread.is_alive()):
            self._spool.close()  # every row in it is written or counted
        if not (self._thread and self._thread.is_alive()):
            self.sink.close()

    def _open_spool(self) -> Spool | None:
        if self._spool_dir is None:
            return None
        try:
            return Spool(spool_folder(self._spool_dir, self.sink.destination))
        except Exception as exc:  # a bad URL or folder: the log runs without crash safety
            log.warning(
                "prediction log: no spool in %s (%s): a crash loses its rows", self._spool_dir, exc
            )
            return None

    @staticmethod
    def _record(batch: LoggedBatch) -> bytes | None:
        try:
            return batch_record(batch)
        except (TypeError, ValueError) as exc:  # an id orjson cannot encode, say
            log.warning("prediction log: a batch kept in memory only, not spooled: %s", exc)
            return None

    def _recover(self) -> None:
        """Queue the rows dead workers left in their spool files (in this worker's spool)."""
        if self._spool is None:
            return
        for path in orphans(self._spool.folder):
            with orphan(path) as data:
                if data is None:
                    continue
                rows = replay(data)
                if not rows:
                    continue
                try:
                    record: bytes | None = rows_record(rows)
                except (TypeError, ValueError):
                    record = None
                with self._ready:
                    segment = self._spool.append(record, len(rows)) if record else None
                    self._pending.append(_Queued(rows, len(rows), segment))
                    self._pending_rows += len(rows)
                metrics.LOG_PENDING.inc(len(rows))
                log.info("prediction log: replaying %d rows a stopped worker left", len(rows))

    def _take(self) -> list[_Queued]:
        with self._ready:
            self._ready.wait_for(
                lambda: self._pending_rows >= self._batch_rows or self._stop.is_set(),
                self._flush_interval,
            )
            taken: list[_Queued] = []
            rows = 0
            while self._pending and rows < self._batch_rows:
                queued = self._pending.popleft()
                taken.append(queued)
                rows += queued.size
            self._pending_rows -= rows
            return taken

    def _run(self) -> None:
        self._recover()
        while not (self._stop.is_set() and not self._pending):
            taken = self._take()
            if taken:
                self._write(taken)

    def _write(self, taken: list[_Queued]) -> None:
        """Write a group of rows, in order: a refused range is bisected until its bad rows are
        alone, an outage is retried until the retry window, counted from its start, ends."""
        rows = [row for queued in taken for row in queued.rows()]
        progress = _Progress(taken, self._spool)
        ranges = deque([(0, len(rows))])
        delay = 0.25
        while ranges:
            lo, hi = ranges[0]
            chunk = rows[lo:hi]
            try:
                if None in chunk:
                    raise RefusedRows("rows that could not be built")
                self.sink.write(chunk)  # type: ignore[arg-type]
            except Exception as exc:  # refused values are isolated, anything else retried
                if isinstance(exc, RefusedRows):
                    ranges.popleft()
                    if hi - lo == 1:
                        log.warning("prediction log: the log refused a row: %s", exc)
                        self._finish(progress, 1, "rejected")
                    else:
                        mid = (lo + hi) // 2
                        ranges.extendleft([(mid, hi), (lo, mid)])
                    continue
                if not self._retry(exc, delay):
                    reason = "shutdown" if self._stop.is_set() else "unavailable"
                    left = sum(h - low for low, h in ranges)
                    self._finish(progress, left, reason)
                    left += self._drop_buffer(reason)
                    log.warning("prediction log: dropped %d rows: %s", left, exc)
                    self._stop.wait(MAX_BACKOFF)  # rows arriving meanwhile wait in the gauge
                    return
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            ranges.popleft()
            self._failing_since = None
            self._finish(progress, hi - lo, None)

    def _retry(self, exc: Exception, delay: float) -> bool:
        """Wait `delay` and say to retry, unless the outage has outlasted the retry window."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        if self._stop.is_set() or now + delay - self._failing_since > self._retry_window:
            return False
        log.warning("prediction log: write failed, retry in %.1f s: %s", delay, exc)
        self._stop.wait(delay)  # on stop, one last attempt
        return True

    def _finish(self, progress: _Progress, rows: int, dropped: str | None) -> None:
        """Count `rows` rows as written (or dropped for a reason), after marking them done."""
        if not rows:
            return
        progress.done(rows)
        if dropped is None:
            metrics.LOG_WRITTEN.inc(rows)
        else:
            metrics.LOG_DROPPED.labels(dropped).inc(rows)
        metrics.LOG_PENDING.dec(rows)

    def _drop_buffer(self, reason: str) -> int:
        """Count every row still in the buffer as dropped; returns how many."""
        with self._ready:
            taken = list(self._pending)
            self._pending.clear()
            self._pending_rows = 0
        rows = sum(q.size for q in taken)
        if taken:
            self._finish(_Progress(taken, self._spool), rows, reason)
        return rows
