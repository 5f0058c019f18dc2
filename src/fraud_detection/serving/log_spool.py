"""Each worker's spool of prediction-log rows: appended before they wait (in memory, or on disk
only when the memory buffer is full), marked done once written (or counted as dropped),
replayed by the next writer to start if the worker died or stopped with rows unwritten.

A spool file is a sequence of records, each starting with a newline so that one cut short (a
full disk) never spoils the next: `B <json>` a logged batch, `R <json>` rows replayed from a
dead worker's spool, `D <n>` the oldest n rows not yet done are done. Its owner holds an
exclusive flock on it; a file whose lock can be taken belongs to no live process. Nothing is
fsynced: a killed process loses nothing (the kernel holds the writes), a machine crash may
lose what the kernel had not flushed yet.
"""

import fcntl
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson

from ..log_record import LOG_COLUMNS, LoggedBatch, Row, explanation_texts, log_rows

log = logging.getLogger(__name__)
TIME_COLUMNS = [LOG_COLUMNS.index(name) for name in ("created_at", "event_time")]
"""Positions of the times in a row, which JSON carries as ISO text."""
SUFFIX = ".spool"
SEGMENT_BYTES = 8 * 1024 * 1024  # a new file past this size; drained files are removed


def batch_record(batch: LoggedBatch) -> bytes:
    """The spool record of a logged batch (numpy arrays serialised as they are)."""
    body: dict[str, Any] = {
        "i": batch.ids,
        "h": [batch.created_at, batch.endpoint, batch.variant, batch.version],
        # orjson takes C-contiguous arrays only; slices of a request's arrays may not be.
        "x": np.ascontiguousarray(batch.features),
        "p": np.ascontiguousarray(batch.probabilities),
        "f": np.ascontiguousarray(batch.is_fraud),
        "t": [batch.threshold, batch.latency_ms],
    }
    if batch.explanations:  # most batches have none: their records stay as they were
        body["e"] = list(batch.explanations.items())
    if batch.event_times:
        body["w"] = list(batch.event_times)
    return b"\nB " + orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def rows_record(rows: Sequence[Row]) -> bytes:
    """The spool record of rows replayed from another spool."""
    return b"\nR " + orjson.dumps(rows)


def _batch_rows(body: dict[str, Any]) -> list[Row]:
    created_at, *rest = body["h"]
    # float32 values, printed shortest, come back as the same float32 values.
    features = np.asarray(body["x"], dtype=np.float32).astype(np.float64).tolist()
    probabilities = np.asarray(body["p"], dtype=np.float32).astype(np.float64).tolist()
    head = (datetime.fromisoformat(created_at), *rest)
    explanations = explanation_texts(dict(body.get("e", [])), len(body["i"]))
    happened = [None if at is None else datetime.fromisoformat(at) for at in body.get("w", [])]
    return log_rows(
        body["i"], head, features, probabilities, body["f"], body["t"], explanations, happened
    )


def _record_rows(kind: bytes, payload: bytes) -> list[Row]:
    if kind == b"B":
        return _batch_rows(orjson.loads(payload))
    rows = []
    for row in orjson.loads(payload):
        # Rows spooled before a column was added leave it empty.
        full = [*row, *(None,) * (len(LOG_COLUMNS) - len(row))]
        for at in TIME_COLUMNS:
            full[at] = None if full[at] is None else datetime.fromisoformat(full[at])
        rows.append(tuple(full))
    return rows


def records(data: bytes) -> Iterator[tuple[int, list[Row]]]:
    """Each record of spool bytes: (rows marked done, rows) for a done mark, (0, rows) for a
    batch; a record cut short (a full disk) is skipped."""
    for line in data.split(b"\n"):
        kind, _, payload = line.partition(b" ")
        try:
            if kind == b"D":
                yield int(payload), []
            elif kind in (b"B", b"R"):
                yield 0, _record_rows(kind, payload)
        except (ValueError, KeyError, TypeError, IndexError):
            log.warning("prediction log spool: skipped a record cut short (%d bytes)", len(line))


def replay(data: bytes) -> list[Row]:
    """The rows of a spool file that were never marked done, oldest first."""
    rows: list[Row] = []
    done = 0
    for marked, found in records(data):
        done += marked
        rows.extend(found)
    return rows[done:]


@dataclass(eq=False)
class Segment:
    """One spool file this worker appends to; `rows` counts those not yet done."""

    path: Path
    fd: int
    rows: int = 0
    size: int = 0


class Place(NamedTuple):
    """Where a record went: its file and its bytes there."""

    segment: Segment
    start: int
    end: int


def spool_folder(root: Path, database_url: str) -> Path:
    """The spool folder for one database, so a spool is never replayed into another log."""
    key = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    return root / key


class Spool:
    """This worker's spool files: append records (up to `max_bytes` in all), mark rows done,
    read records back, remove drained files."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.max_bytes = max_bytes
        self.size = 0
        """Bytes in this worker's files."""
        self._lock = threading.Lock()
        self._segments: list[Segment] = []
        self._closed = False
        self._current = self._new_segment()

    def _new_segment(self) -> Segment:
        hidden = self.folder / f".{uuid.uuid4().hex}"
        fd = os.open(hidden, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Locked before it gets a name a recovering writer looks for.
        path = self.folder / f"{os.getpid()}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        os.rename(hidden, path)
        segment = Segment(path, fd)
        self._segments.append(segment)
        return segment

    def append(self, record: bytes, rows: int) -> Place | None:
        """Append a record of `rows` rows; None when it would pass `max_bytes` or the disk
        refused it (the rows are then only in memory, if at all)."""
        with self._lock:
            # Closed: its descriptors may be another file's by now.
            if self._closed or self.size + len(record) > self.max_bytes:
                return None
            try:
                if self._current.size >= SEGMENT_BYTES:
                    self._current = self._new_segment()
                segment = self._current
                written = os.write(segment.fd, record)
            except OSError as exc:
                log.warning("prediction log spool: append failed: %s", exc)
                return None
            start = segment.size
            segment.size += written
            self.size += written
            if written < len(record):  # a full disk: the record is cut short, and skipped
                return None
            segment.rows += rows
            return Place(segment, start, segment.size)

    def read(self, segment: Segment, start: int, end: int) -> bytes:
        """The bytes [start, end) of one of this worker's files."""
        fd = os.open(segment.path, os.O_RDONLY)
        try:
            return os.pread(fd, end - start, start)
        finally:
            os.close(fd)

    def done(self, segment: Segment, rows: int) -> None:
        """Mark the oldest `rows` rows of `segment` as written or counted."""
        with self._lock:
            if self._closed:
                return
            segment.rows -= rows
            try:
                if segment.rows > 0:
                    # Always written, past max_bytes too: a row never marked is written twice.
                    written = os.write(segment.fd, b"\nD %d" % rows)
                    segment.size += written
                    self.size += written
                elif segment is self._current:
                    os.ftruncate(segment.fd, 0)
                    self.size -= segment.size
                    segment.size = 0
                else:
                    self._remove(segment)
            except OSError as exc:
                log.warning("prediction log spool: marking rows done failed: %s", exc)

    def _remove(self, segment: Segment) -> None:
        segment.path.unlink(missing_ok=True)
        os.close(segment.fd)
        self.size -= segment.size
        self._segments.remove(segment)

    def close(self) -> None:
        """Remove the drained files; leave those with rows not done, unlocked, for the next
        writer to start (a stop in a database outage hands its rows on, as a crash does)."""
        with self._lock:
            for segment in list(self._segments):
                if segment.rows > 0:
                    os.close(segment.fd)
                    self._segments.remove(segment)
                else:
                    self._remove(segment)
            self._closed = True


@contextmanager
def orphan(path: Path) -> Iterator[bytes | None]:
    """The contents of a spool file no live process holds, removed after the block; None
    when its owner lives or another writer took it first."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        if os.fstat(fd).st_nlink == 0:  # replayed and removed since we opened it
            yield None
            return
        with os.fdopen(os.dup(fd), "rb") as file:
            data = file.read()
        yield data
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def orphans(folder: Path) -> list[Path]:
    """The spool files in `folder` (their owners may be alive)."""
    return sorted(folder.glob(f"*{SUFFIX}"))
