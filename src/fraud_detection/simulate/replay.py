"""The replay engine: one thread and one loop.

Each batch of transactions waits for its due time, measured from the start (so a slow answer
does not lower the rate for good), goes to `/predict`, and the labels of the transactions the
service scored join a queue; `/feedback` receives them once they are `label_delay` seconds
old, in batches, while the replay goes on. After the last transaction the loop waits for the
remaining labels and sends them.

With `speed` the replay runs in simulated time: each row's Time becomes its `event_time` (from
`start`, stretched over `days`), the rows go out at `speed` simulated seconds per wall second
instead of at `rate`, and labels carry the simulated moment they were learnt (`observed_at`).
With `labels="issuer"` an issuer's label process decides which labels come and when: reviews
of the best-scored alerts up to a daily capacity, chargebacks of missed frauds weeks later,
never a label for a legitimate row (see `issuer`).

Failures degrade, never crash: a connection error or 5xx from `/predict` is retried a couple
of times and then counted; a 4xx is counted at once; labels the service cannot store now
(503, connection error) stay queued and are retried until `feedback_deadline`.
"""

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
import requests

from ..config import MAX_BATCH
from ..errors import UsageError
from ..prediction_log import utc_now
from ..schema import FEATURES, LABEL
from .issuer import IssuerLabels, IssuerOptions
from .labels import LabelQueue, PendingLabel, choose_labelled, iso_utc
from .service import (
    Answer,
    Clock,
    Sleep,
    bounded,
    last_error,
    post,
    retryable,
    scored_rows,
)
from .summary import Summary
from .traffic import SimClock, due_time, event_times

LABEL_PROCESSES = ("uniform", "issuer")
ISSUER_SPEED = 86_400.0
"""The pace of `--labels issuer` when no --speed is given: a simulated day each second."""
FATAL_STATUSES = (401, 403)
"""Answers that every following request would get too: the replay stops instead of counting."""


def run_id() -> str:
    """A short random id that keeps one run's transaction ids apart from another's."""
    return uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class ReplayOptions:
    """How to replay: where, how fast, and when labels follow."""

    url: str = "http://127.0.0.1:5000"
    token: str | None = None
    rate: float = 100.0
    """Transactions per second on average; 0 sends as fast as the service answers."""
    batch_size: int = 1
    label_delay: float = 5.0
    label_fraction: float = 1.0
    seed: int = 0
    prefix: str = "sim"
    timeout: float = 10.0
    """Seconds one request may take."""
    retries: int = 2
    """Extra attempts of a /predict that failed with a connection error or a 5xx."""
    backoff: float = 0.2
    """Seconds before the first retry of /predict; doubles each time."""
    feedback_deadline: float = 60.0
    """Seconds after a label is due that it is retried for, before it counts as failed."""
    feedback_backoff: float = 0.5
    """Seconds before a refused label batch is tried again; doubles up to 5 s."""
    flush_interval: float = 0.5
    """Due labels are sent at most this often, so they travel in batches, not one by one."""
    max_batch: int = MAX_BATCH
    """The most transactions (or labels) the service takes in one request: FRAUD_MAX_BATCH."""
    labels: Literal["uniform", "issuer"] = "uniform"
    """uniform: a random `label_fraction` of the rows, `label_delay` after scoring; issuer:
    reviews and chargebacks as `issuer` describes."""
    issuer: IssuerOptions = field(default_factory=IssuerOptions)
    speed: float | None = None
    """Simulated seconds per wall second; None: no simulated time (`rate` paces), except with
    issuer labels, which run at ISSUER_SPEED."""
    start: datetime | None = None
    """The first row's event time (naive UTC); None: when the replay starts."""
    days: float | None = None
    """Simulated days the rows' Time is stretched over; None: their own span."""

    @property
    def pace(self) -> float | None:
        """The simulated speed this replay runs at, or None without simulated time."""
        return ISSUER_SPEED if self.speed is None and self.labels == "issuer" else self.speed

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= self.max_batch:
            raise UsageError(
                f"--batch-size must be 1..{self.max_batch} (FRAUD_MAX_BATCH), not {self.batch_size}"
            )
        if self.rate < 0 or self.label_delay < 0:
            raise UsageError("rate and label delay must not be negative")
        if self.labels not in LABEL_PROCESSES:
            raise UsageError(f"labels must be one of {', '.join(LABEL_PROCESSES)}")
        if self.speed is not None and not self.speed > 0:
            raise UsageError(f"--speed must be above 0, not {self.speed}")
        if self.days is not None and not self.days > 0:
            raise UsageError(f"--days must be above 0, not {self.days}")


class _Stop(Exception):
    """The service refused the credentials: every further request would fail the same way."""


class Replay:
    """One replay of `rows` against a service; `run()` returns its Summary."""

    def __init__(
        self,
        rows: pd.DataFrame,
        options: ReplayOptions,
        *,
        session: requests.Session,
        on_progress: Callable[[Summary], None] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        synthetic: bool = False,
    ) -> None:
        self.options = options
        self.url = options.url.rstrip("/")
        self.session = session
        self.headers = {"Authorization": f"Bearer {options.token}"} if options.token else {}
        self.on_progress = on_progress or (lambda summary: None)
        self.clock, self.sleep = clock, sleep
        self.ids = [f"{options.prefix}-{index}" for index in rows.index]
        self.features = rows.loc[:, list(FEATURES)].to_numpy(dtype=np.float64)
        self.labels = rows[LABEL].to_numpy(dtype=np.int64)
        start = options.start or utc_now()
        self.events = event_times(rows, start, options.days) if options.pace else None
        self.sim: SimClock | None = None
        self.issuer = (
            IssuerLabels(self.labels, start, options.issuer, options.seed)
            if options.labels == "issuer"
            else None
        )
        self.labelled = choose_labelled(
            len(rows), options.label_fraction if self.issuer is None else 0.0, options.seed
        )
        self.queue = LabelQueue()
        self.summary = Summary(len(rows), int(self.labelled.sum()), synthetic=synthetic)
        self.last_flush = -math.inf
        self.started = 0.0
        self.start = start

    def run(self) -> Summary:
        """Replay every transaction, then send the labels still waiting; Ctrl-C stops cleanly."""
        started = self.started = self.clock()
        if self.options.pace:
            self.sim = SimClock(self.start, self.options.pace, started)
        replay_end: float | None = None
        size = self.options.batch_size
        try:
            for first in range(0, len(self.ids), size):
                self._wait_until(self._due(first))
                batch = range(first, min(first + size, len(self.ids)))
                self._predict(batch)
                if self.sim is not None and self.events is not None:
                    following = self.events[batch.stop] if batch.stop < len(self.ids) else None
                    self.sim.sent_until(following, self.clock())
                self._send_due_labels()
            replay_end = self.clock()
            self._send_remaining_labels()
        except KeyboardInterrupt:
            self.summary.interrupted = True
        except _Stop as stop:
            self.summary.stopped = str(stop)
        finally:
            now = self.clock()
            self.summary.labels_unsent += len(self.queue.drain())
            if self.issuer is not None:
                self.summary.issuer = self.issuer.counts()
            self.summary.replay_seconds = (now if replay_end is None else replay_end) - started
            self.summary.elapsed_seconds = now - started
            self.on_progress(self.summary)
        return self.summary

    def _due(self, row: int) -> float:
        """When row `row` goes out: at its simulated time, or at `rate` from the start."""
        if self.sim is not None and self.events is not None:
            return self.sim.wall_at(self.events[row])
        return due_time(self.started, row, self.options.rate)

    def _wait_until(self, due: float) -> None:
        """Sleep until `due`, sending labels that fall due in the meantime."""
        while True:
            self._send_due_labels()
            now = self.clock()
            if now >= due:
                return
            self.sleep(max(0.0, min(due, self._next_flush()) - now))

    def _next_flush(self) -> float:
        """When labels may next be sent (infinity when none are queued or to come)."""
        ready = self.queue.next_at()
        learnt = self.issuer.next_at() if self.issuer is not None else None
        if learnt is not None and self.sim is not None:
            wall = self.sim.wall_at(learnt)
            ready = wall if ready is None else min(ready, wall)
        if ready is None:
            return math.inf
        return max(ready, self.last_flush + self.options.flush_interval)

    def _labels_left(self) -> bool:
        return bool(len(self.queue) or (self.issuer is not None and len(self.issuer)))

    def _send_remaining_labels(self) -> None:
        """After the last transaction: wait for each queued label and send it."""
        while self._labels_left():
            now = self.clock()
            wake = self._next_flush()
            if wake > now:
                self.sleep(wake - now)
            self._send_due_labels()

    def _predict(self, batch: range) -> None:
        """Score one batch, retrying connection errors and 5xx; queue the scored rows' labels."""
        summary = self.summary
        records = [self._transaction(i) for i in batch]
        body: Any = records[0] if len(records) == 1 else {"instances": records}
        # Counted before the answer: a Ctrl-C while it is awaited leaves the batch sent.
        summary.sent += len(batch)
        summary.frauds += int(self.labels[batch.start : batch.stop].sum())
        answer = self._post_with_retries("/predict", body)
        summary.replay_seconds = self.clock() - self.started
        scored = scored_rows(answer, [self.ids[i] for i in batch]) if answer.status == 200 else None
        if scored is None:
            problem = answer.problem or "unreadable answer"
            self._count_failure(f"predict {problem}", len(batch), answer)
            if answer.status in FATAL_STATUSES:
                raise _Stop(f"/predict answered {problem}: check --token / FRAUD_API_TOKEN")
        else:
            due = self.clock() + self.options.label_delay
            for i in batch:
                verdict = scored.get(self.ids[i])
                if verdict is None:
                    self._count_failure("predict answer without the transaction", 1, answer)
                    continue
                summary.scored += 1
                summary.flagged += int(verdict.is_fraud)
                if self.issuer is not None and self.events is not None:
                    at = self.events[i]
                    self.issuer.scored(i, self.ids[i], at, verdict.probability, verdict.is_fraud)
                elif self.labelled[i]:
                    self.queue.add(PendingLabel(self.ids[i], int(self.labels[i]), due))
                    summary.labels_queued += 1
        self.on_progress(summary)

    def _transaction(self, i: int) -> dict[str, Any]:
        record: dict[str, Any] = {"transaction_id": self.ids[i]}
        record.update(zip(FEATURES, self.features[i].tolist(), strict=True))
        if self.events is not None:
            record["event_time"] = iso_utc(self.events[i])
        return record

    def _post_with_retries(self, path: str, body: Any) -> Answer:
        """POST, retrying a missing answer or a 5xx `retries` times with doubling backoff."""
        answer = self._post(path, body)
        for attempt in range(self.options.retries):
            if not retryable(answer):
                break
            self.sleep(self.options.backoff * 2**attempt)
            answer = self._post(path, body)
        return answer

    def _post(self, path: str, body: Any) -> Answer:
        timeout = self.options.timeout
        return post(self.session, self.url + path, body, headers=self.headers, timeout=timeout)

    def _count_failure(self, reason: str, count: int, answer: Answer) -> None:
        self.summary.failed += count
        self.summary.errors[bounded(reason)] += count
        self.summary.last_error = last_error(reason, answer)

    def _send_due_labels(self) -> None:
        """Send every label that is due, in batches, at most once per flush interval."""
        now = self.clock()
        if now < self._next_flush():
            return
        self.last_flush = now
        self._learn(now)
        while batch := self.queue.take(now, self.options.max_batch):
            self._send_labels(batch)
        self.on_progress(self.summary)

    def _learn(self, now: float) -> None:
        """Queue the labels the simulated issuer has learnt by now."""
        if self.issuer is None or self.sim is None:
            return
        for learnt in self.issuer.release(self.sim.now(now)):
            label = PendingLabel(
                learnt.transaction_id, learnt.label, now, learnt.source, learnt.observed_at
            )
            self.queue.add(label)
            self.summary.labels_planned += 1
            self.summary.labels_queued += 1

    def _send_labels(self, batch: list[PendingLabel]) -> None:
        """POST one batch to /feedback; keep it queued when the service cannot store it now."""
        summary = self.summary
        if self.sim is not None:  # in simulated time a label is learnt when it is sent
            moment = self.sim.now(self.clock())
            for pending in batch:
                pending.observed_at = pending.observed_at or moment
        body = {"labels": [pending.body() for pending in batch]}
        try:
            answer = self._post("/feedback", body)
        except KeyboardInterrupt:
            summary.labels_unsent += len(batch)  # in flight: stored or not, nobody knows
            raise
        if answer.status == 200:
            summary.labels_sent += len(batch)
            return
        reason = f"feedback {answer.problem}"
        if not retryable(answer):
            summary.labels_failed += len(batch)
            summary.errors[bounded(reason)] += len(batch)
            summary.last_error = last_error(reason, answer)
            if answer.status in FATAL_STATUSES:
                raise _Stop(f"/feedback answered {answer.problem}: check --token / FRAUD_API_TOKEN")
            return
        now = self.clock()
        for pending in batch:
            if now >= pending.due + self.options.feedback_deadline:
                summary.labels_failed += 1
                summary.errors[bounded(f"{reason} (gave up)")] += 1
                summary.last_error = last_error(reason, answer)
                continue
            pending.attempts += 1
            wait = min(5.0, self.options.feedback_backoff * 2 ** (pending.attempts - 1))
            self.queue.add(pending, at=now + wait)


def replay(
    rows: pd.DataFrame,
    options: ReplayOptions,
    *,
    session: requests.Session | None = None,
    **hooks: Any,
) -> Summary:
    """Replay `rows` (index = row number, the 30 features and Class) against the service.

    `session` defaults to a new keep-alive session, closed at the end; `hooks` are Replay's
    on_progress, clock, sleep (the monotonic clock and its sleep, replaceable in tests) and
    synthetic.
    """
    http = session or requests.Session()
    try:
        return Replay(rows, options, session=http, **hooks).run()
    finally:
        if session is None:
            http.close()
