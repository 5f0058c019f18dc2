"""Each worker's prediction-log writer: a buffer drained by one thread into a `PredictionSink`
(the database), in order.

Requests only append to the buffer and the worker's spool file, so a slow or down sink never
delays them. The buffer holds FRAUD_LOG_CAPACITY rows in memory; past that, rows wait in the
spool file only (up to FRAUD_LOG_SPOOL_MAX_MB) and are read back when their turn comes, so a
database outage of many minutes loses nothing: the writer retries until it is back. Every row
is written, or counted in `fraud_prediction_log_dropped_total` with its reason: memory and
spool were both full (`unavailable` in an outage, `buffer_full` otherwise), the sink refused
the row's values (found by bisecting its batch: it never takes other rows with it), or the
worker stopped with the row in memory only. Rows of a worker killed outright, or stopped in
an outage, stay in its spool, and the next writer to start writes them.
"""

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..log_record import LoggedBatch, Row
from ..prediction_sink import PredictionSink, RefusedRows
from . import metrics
from .log_spool import (
    Place,
    Segment,
    Spool,
    batch_record,
    orphan,
    orphans,
    records,
    replay,
    rows_record,
    spool_folder,
)

log = logging.getLogger(__name__)
MAX_BACKOFF = 5.0
REPLAY_ROWS = 1_000
"""Rows per record when a dead worker's rows are queued again."""


@dataclass(frozen=True)
class _Queued:
    """Rows waiting in memory: a request's batch, or rows read back from a spool; `segment`
    is the spool file holding them (None if the spool could not take them)."""

    source: LoggedBatch | list[Row]
    size: int
    segment: Segment | None
    since: float
    """When the rows were queued (time.monotonic)."""

    def rows(self) -> list[Row | None]:
        """Its rows; None for each when they cannot be built (refused like a bad value)."""
        if isinstance(self.source, list):
            return list(self.source)
        try:
            return list(self.source.rows())
        except Exception:  # a malformed batch must not stop the writer: its rows are refused
            log.exception("prediction log: a batch's rows could not be built")
            return [None] * self.size


@dataclass
class _Spilled:
    """Rows waiting on disk only, queued while memory was full: records [start, end) of one
    spool file (with the done marks written between them, which reading skips)."""

    segment: Segment
    start: int
    end: int
    size: int
    since: float

    def groups(self, spool: Spool, rows: int) -> Iterator[list[_Queued]]:
        """Its records read back, about `rows` rows at a time."""
        group: list[_Queued] = []
        size = 0
        for _, found in records(spool.read(self.segment, self.start, self.end)):
            if found:
                group.append(_Queued(found, len(found), self.segment, self.since))
                size += len(found)
            if size >= rows:
                yield group
                group, size = [], 0
        if group:
            yield group


class _Progress:
    """Marks a group's rows done, oldest first, in the spool files their batches came from."""

    def __init__(self, taken: list[_Queued], spool: Spool | None) -> None:
        # One entry per run of batches from the same file: a done mark (a write to the file)
        # per file a group touched, not one per request.
        self._left: deque[tuple[Segment | None, int]] = deque()
        for queued in taken:
            if self._left and self._left[-1][0] is queued.segment:
                self._left[-1] = (queued.segment, self._left[-1][1] + queued.size)
            else:
                self._left.append((queued.segment, queued.size))
        self._spool = spool

    def rest(self) -> list[tuple[Segment | None, int]]:
        """The rows not done yet: (spool file, rows), oldest first."""
        return list(self._left)

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
    """The buffer of logged batches and the thread that writes them to a sink. Without
    `spool_dir`, rows wait in memory only (a killed worker loses them)."""

    def __init__(
        self,
        sink: PredictionSink,
        *,
        capacity: int = 10_000,
        batch_rows: int = 200,
        flush_interval: float = 0.1,
        spool_dir: Path | None = None,
        spool_max_bytes: int = 256 * 1024 * 1024,
        explain: Callable[[list[Row | None]], list[Row | None]] | None = None,
    ) -> None:
        self.sink = sink
        self._explain = explain
        self._capacity = capacity
        self._batch_rows = batch_rows
        self._flush_interval = flush_interval
        self._spool_dir = spool_dir
        self._spool_max_bytes = spool_max_bytes
        self._spool: Spool | None = None
        self._pending: deque[_Queued | _Spilled] = deque()
        self._memory_rows = 0  # rows of _Queued items, bounded by capacity
        self._waiting_rows = 0  # every queued row, in memory or on disk
        self._in_flight_since: float | None = None  # of the group being written
        self._failing = False
        self._ready = threading.Condition(threading.Lock())  # not reentrant: cheaper
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def log(self, batch: LoggedBatch) -> None:
        """Queue a batch for writing, or count its rows as dropped when memory and spool are
        both full."""
        record = self._record(batch) if self._spool is not None else None
        self._enqueue(batch, len(batch.ids), record)

    def _enqueue(self, source: LoggedBatch | list[Row], rows: int, record: bytes | None) -> None:
        with self._ready:
            in_memory = self._memory_rows + rows <= self._capacity
            place = self._spool.append(record, rows) if self._spool and record else None
            if place is None and not in_memory:
                metrics.LOG_DROPPED.labels("unavailable" if self._failing else "buffer_full").inc(
                    rows
                )
                return
            now = time.monotonic()
            if in_memory:
                segment = place.segment if place else None
                self._pending.append(_Queued(source, rows, segment, now))
                self._memory_rows += rows
            elif place is not None:
                self._spill(place, rows, now)
            self._waiting_rows += rows
            # Waking the writer per request would write one-row transactions: it is woken for
            # a full batch only, and otherwise flushes every flush_interval.
            if self._waiting_rows >= self._batch_rows:
                self._ready.notify()
        metrics.LOG_PENDING.inc(rows)

    def _spill(self, place: Place, rows: int, now: float) -> None:
        """Queue rows the spool holds and memory has no room for; consecutive ones of a file
        are one item, so an outage's rows cost memory per file, not per row."""
        last = self._pending[-1] if self._pending else None
        if isinstance(last, _Spilled) and last.segment is place.segment:
            last.end = place.end
            last.size += rows
        else:
            self._pending.append(_Spilled(place.segment, place.start, place.end, rows, now))

    def start(self) -> None:
        """Open this worker's spool and start the writer thread (once per worker process)."""
        self._spool = self._open_spool()
        self._thread = threading.Thread(target=self._run, daemon=True, name="prediction-log")
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread after one last flush. What cannot be written in time stays in the
        spool for the next writer; rows only in memory are dropped."""
        self._stop.set()
        with self._ready:
            self._ready.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._ready:
            left = list(self._pending)
            self._pending.clear()
            self._memory_rows = self._waiting_rows = 0
        kept = self._hand_on([(q.segment, q.size) for q in left])
        if left:
            log.warning(
                "prediction log: %d rows unwritten at exit, %d of them left in the spool",
                sum(q.size for q in left),
                kept,
            )
        if not (self._thread and self._thread.is_alive()):
            if self._spool is not None:
                self._spool.close()
            self.sink.close()
        metrics.LOG_PENDING_AGE.set(0)

    def _hand_on(self, rows: list[tuple[Segment | None, int]]) -> int:
        """Leave rows unwritten at a stop: those in the spool stay there for the next writer,
        the others are counted dropped. Returns how many stay."""
        kept = sum(n for segment, n in rows if segment is not None)
        lost = sum(n for segment, n in rows if segment is None)
        if lost:
            metrics.LOG_DROPPED.labels("shutdown").inc(lost)
        metrics.LOG_PENDING.dec(kept + lost)
        return kept

    def _open_spool(self) -> Spool | None:
        if self._spool_dir is None:
            return None
        try:
            folder = spool_folder(self._spool_dir, self.sink.destination)
            return Spool(folder, self._spool_max_bytes)
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
        """Queue the rows dead or stopped workers left in their spool files (into this
        worker's spool)."""
        if self._spool is None:
            return
        for path in orphans(self._spool.folder):
            with orphan(path) as data:
                if data is None:
                    continue
                rows = replay(data)
                for start in range(0, len(rows), REPLAY_ROWS):
                    part = rows[start : start + REPLAY_ROWS]
                    try:
                        record: bytes | None = rows_record(part)
                    except (TypeError, ValueError):
                        record = None
                    self._enqueue(part, len(part), record)
                if rows:
                    log.info("prediction log: replaying %d rows a stopped worker left", len(rows))

    def _take(self) -> list[_Queued] | _Spilled:
        """The next rows to write: up to batch_rows from memory, or the next rows on disk."""
        with self._ready:
            self._ready.wait_for(
                lambda: self._waiting_rows >= self._batch_rows or self._stop.is_set(),
                self._flush_interval,
            )
            head = self._pending[0] if self._pending else None
            if isinstance(head, _Spilled):
                self._pending.popleft()
                self._waiting_rows -= head.size
                self._in_flight_since = head.since
                return head
            taken: list[_Queued] = []
            rows = 0
            while isinstance(head, _Queued) and rows < self._batch_rows:
                self._pending.popleft()
                taken.append(head)
                rows += head.size
                head = self._pending[0] if self._pending else None
            self._memory_rows -= rows
            self._waiting_rows -= rows
            self._in_flight_since = taken[0].since if taken else None
            return taken

    def _run(self) -> None:
        self._recover()
        while not (self._stop.is_set() and not self._pending):
            self._show_age()
            taken = self._take()
            if isinstance(taken, _Spilled):
                written = self._write_spilled(taken)
            else:
                written = not taken or self._write(taken)
            self._in_flight_since = None
            if not written:  # stopped in an outage: the rest stays in the spool
                return

    def _write_spilled(self, spilled: _Spilled) -> bool:
        """Write rows read back from the spool, a group at a time; False when stopped in an
        outage (the rest stays in the spool)."""
        assert self._spool is not None  # only a spool spills
        left = spilled.size
        try:
            for group in spilled.groups(self._spool, self._batch_rows):
                left -= sum(q.size for q in group)
                if not self._write(group):
                    self._hand_on([(spilled.segment, left)])
                    return False
        except OSError:  # a file that cannot be read back: its rows cannot be built
            log.exception("prediction log: %d spooled rows could not be read back", left)
            self._spool.done(spilled.segment, left)
            metrics.LOG_DROPPED.labels("rejected").inc(left)
            metrics.LOG_PENDING.dec(left)
        return True

    def _show_age(self) -> None:
        """Set the pending-age gauge: how long the oldest waiting row has waited."""
        with self._ready:
            heads = [self._pending[0].since] if self._pending else []
        if self._in_flight_since is not None:
            heads.append(self._in_flight_since)
        metrics.LOG_PENDING_AGE.set(time.monotonic() - min(heads) if heads else 0)

    def _write(self, taken: list[_Queued]) -> bool:
        """Write a group of rows, in order: a refused range is bisected until its bad rows are
        alone, an outage is retried until it ends. False when stopped in an outage (the rows
        not written are handed on)."""
        rows = [row for queued in taken for row in queued.rows()]
        if self._explain is not None:
            rows = self._explain(rows)
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
                    self._hand_on(progress.rest())
                    log.warning("prediction log: stopped in an outage: %s", exc)
                    return False
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            ranges.popleft()
            self._failing = False
            self._finish(progress, hi - lo, None)
        return True

    def _retry(self, exc: Exception, delay: float) -> bool:
        """Wait `delay` and say to retry, unless the writer is stopping."""
        self._failing = True
        if self._stop.is_set():
            return False
        log.warning("prediction log: write failed, retry in %.1f s: %s", delay, exc)
        self._show_age()
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
