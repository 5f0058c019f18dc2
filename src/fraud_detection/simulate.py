"""`fraud simulate`: replay the new data through a running service as live traffic, then label it.

The engine is one thread and one loop. Each batch of transactions waits for its due time,
measured from the start (so a slow answer does not lower the rate for good), goes to
`/predict`, and the labels of the transactions the service scored join a queue; `/feedback`
receives them once they are `label_delay` seconds old, in batches, while the replay goes on.
After the last transaction the loop waits for the remaining labels and sends them.

Failures degrade, never crash: a connection error or 5xx from `/predict` is retried a couple
of times and then counted; a 4xx is counted at once; labels the service cannot store now
(503, connection error) stay queued and are retried until `feedback_deadline`.
"""

import heapq
import itertools
import math
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import requests

from .config import get_settings
from .data import time_split
from .errors import ServiceNotReadyError, UsageError
from .schema import FEATURES, LABEL

Clock = Callable[[], float]
Sleep = Callable[[float], None]

HISTORY_FRACTION = 0.8
"""The earliest share of rows by Time that the model was trained on; the rest is replayed."""
SHIFT_OPERATORS = ("+", "-", "*")
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_SHIFT = re.compile(rf"\s*(?P<feature>\w+)\s*(?P<op>[-+*])\s*(?P<value>{_NUMBER})\s*")
READY_POLL_INTERVAL = 0.2
READY_POLL_TIMEOUT = 2.0
_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")]*")
FATAL_STATUSES = (401, 403)
"""Answers that every following request would get too: the replay stops instead of counting."""


class ShiftError(UsageError):
    """A --shift expression that is not `<feature><+|-|*><number>` over a known feature."""


@dataclass(frozen=True)
class Shift:
    """A drift to simulate: `feature op value` applied to every replayed row."""

    feature: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.feature}{self.op}{self.value:g}"

    def apply(self, values: "pd.Series[float]") -> "pd.Series[float]":
        """The shifted column."""
        if self.op == "+":
            return values + self.value
        if self.op == "-":
            return values - self.value
        return values * self.value


def parse_shift(expression: str) -> Shift:
    """`Amount*3`, `V14+2`, `V3-1.5` as a Shift; ShiftError says what is wrong."""
    match = _SHIFT.fullmatch(expression)
    if match is None:
        raise ShiftError(
            f"{expression!r} is not FEATURE OP NUMBER with OP one of + - * "
            "(for example Amount*3, V14+2, V3-1.5)"
        )
    feature, value = match["feature"], float(match["value"])
    if feature not in FEATURES:
        near = [f for f in FEATURES if f.lower() == feature.lower()]
        hint = f"; did you mean {near[0]}?" if near else ""
        raise ShiftError(
            f"{expression!r}: unknown feature {feature!r} (features: Time, V1..V28, Amount){hint}"
        )
    if not math.isfinite(value):
        raise ShiftError(f"{expression!r}: the number must be finite")
    return Shift(feature, match["op"], value)


def apply_shifts(rows: pd.DataFrame, shifts: Sequence[Shift]) -> pd.DataFrame:
    """A copy of `rows` with every shift applied in order; Amount stays >= 0 (the service
    refuses negative amounts, so a shift below zero stops at zero)."""
    shifted = rows.copy()
    for shift in shifts:
        shifted[shift.feature] = shift.apply(shifted[shift.feature].astype(np.float64))
    if shifts:
        shifted["Amount"] = shifted["Amount"].clip(lower=0.0)
    return shifted


def new_data(df: pd.DataFrame, history_fraction: float = HISTORY_FRACTION) -> pd.DataFrame:
    """The rows after the first `history_fraction` by Time: what arrives after the model ships.

    The index is each row's position in the whole time-ordered dataset, so transaction ids
    built from it name the same row whatever --limit or --history-fraction picks.
    """
    return time_split(df, history_fraction)[1]


def spread_rows(rows: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    """`limit` rows spread evenly over the whole period, first and last included, in order.

    Every k-th row rather than the first `limit`, so a short replay still covers the period;
    the share of frauds stays what the data has (nothing is oversampled).
    """
    if limit is None or limit >= len(rows):
        return rows
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    positions = (np.arange(limit) * (len(rows) - 1)) // max(limit - 1, 1)
    return rows.iloc[positions]


def choose_labelled(rows: int, fraction: float, seed: int) -> "np.ndarray[Any, np.dtype[np.bool_]]":
    """Which rows get their label sent: a uniform random `fraction` of them (by `seed`)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"label fraction must be between 0 and 1, not {fraction}")
    chosen = np.zeros(rows, dtype=np.bool_)
    picked = np.random.default_rng(seed).choice(rows, size=round(rows * fraction), replace=False)
    chosen[picked] = True
    return chosen


def due_time(start: float, sent: int, rate: float) -> float:
    """When the transaction after the first `sent` is due at `rate` per second (0: now)."""
    return start + sent / rate if rate > 0 else start


def run_id() -> str:
    """A short random id that keeps one run's transaction ids apart from another's."""
    return uuid.uuid4().hex[:8]


@dataclass
class PendingLabel:
    """A label waiting until it is due, or until the service can take it again."""

    transaction_id: str
    label: int
    due: float
    """When it first became due: `label_delay` after its transaction was scored."""
    attempts: int = 0


class LabelQueue:
    """Labels ordered by when they may next be sent (due time, or a retry after a refusal)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, PendingLabel]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, label: PendingLabel, at: float | None = None) -> None:
        """Queue `label` to be sent at `at` (default: when it is due)."""
        heapq.heappush(self._heap, (label.due if at is None else at, next(self._order), label))

    def next_at(self) -> float | None:
        """When the earliest label may be sent, or None when the queue is empty."""
        return self._heap[0][0] if self._heap else None

    def take(self, now: float, limit: int | None = None) -> list[PendingLabel]:
        """Up to `limit` (default: all) labels that may be sent at `now`, earliest first."""
        taken: list[PendingLabel] = []
        while self._heap and self._heap[0][0] <= now and len(taken) != limit:
            taken.append(heapq.heappop(self._heap)[2])
        return taken

    def drain(self) -> list[PendingLabel]:
        """Every queued label, emptying the queue."""
        labels = [entry[2] for entry in sorted(self._heap)]
        self._heap.clear()
        return labels


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
    max_batch: int = field(default_factory=lambda: get_settings().max_batch)
    """The most transactions (or labels) the service takes in one request: FRAUD_MAX_BATCH."""

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= self.max_batch:
            raise UsageError(
                f"--batch-size must be 1..{self.max_batch} (FRAUD_MAX_BATCH), not {self.batch_size}"
            )
        if self.rate < 0 or self.label_delay < 0:
            raise UsageError("rate and label delay must not be negative")


@dataclass
class Summary:
    """What a replay did; `ok` when every transaction was scored and every label stored."""

    transactions: int
    labels_planned: int
    synthetic: bool = False
    sent: int = 0
    scored: int = 0
    failed: int = 0
    flagged: int = 0
    frauds: int = 0
    labels_queued: int = 0
    labels_sent: int = 0
    labels_failed: int = 0
    labels_unsent: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    last_error: str | None = None
    replay_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    interrupted: bool = False
    stopped: str | None = None

    @property
    def rate(self) -> float:
        """Transactions sent per second so far (the wait for the last labels excluded)."""
        return self.sent / self.replay_seconds if self.replay_seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Every transaction scored and every chosen label stored."""
        return (
            self.failed == 0
            and self.labels_failed == 0
            and self.labels_unsent == 0
            and self.sent == self.transactions
            and not self.interrupted
            and self.stopped is None
        )

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready values."""
        return {
            "transactions": self.transactions,
            "sent": self.sent,
            "scored": self.scored,
            "failed": self.failed,
            "flagged": self.flagged,
            "frauds": self.frauds,
            "labels_planned": self.labels_planned,
            "labels_queued": self.labels_queued,
            "labels_sent": self.labels_sent,
            "labels_failed": self.labels_failed,
            "labels_unsent": self.labels_unsent,
            "errors": dict(self.errors),
            "last_error": self.last_error,
            "rate": round(self.rate, 3),
            "replay_seconds": round(self.replay_seconds, 3),
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "interrupted": self.interrupted,
            "stopped": self.stopped,
            "synthetic": self.synthetic,
            "ok": self.ok,
        }


@dataclass(frozen=True)
class _Answer:
    status: int | None
    """None when no HTTP answer came (connection refused, timeout)."""
    body: Any
    problem: str | None
    """A short description from a small set: `HTTP 503 model_unavailable`, `timeout`."""
    detail: str
    """What the service or the network said, for the summary's last error."""


class _Stop(Exception):
    """The service refused the credentials: every further request would fail the same way."""


class Replay:
    """One replay of `rows` against a service; `run()` returns its Summary."""

    def __init__(
        self,
        rows: pd.DataFrame,
        options: ReplayOptions,
        *,
        session: requests.Session | None = None,
        on_progress: Callable[[Summary], None] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        synthetic: bool = False,
    ) -> None:
        self.options = options
        self.url = options.url.rstrip("/")
        self.session = session or requests.Session()
        self.headers = {"Authorization": f"Bearer {options.token}"} if options.token else {}
        self.on_progress = on_progress or (lambda summary: None)
        self.clock, self.sleep = clock, sleep
        self.ids = [f"{options.prefix}-{index}" for index in rows.index]
        self.features = rows.loc[:, list(FEATURES)].to_numpy(dtype=np.float64)
        self.labels = rows[LABEL].to_numpy(dtype=np.int64)
        self.labelled = choose_labelled(len(rows), options.label_fraction, options.seed)
        self.queue = LabelQueue()
        self.summary = Summary(len(rows), int(self.labelled.sum()), synthetic=synthetic)
        self.last_flush = -math.inf
        self.started = 0.0

    def run(self) -> Summary:
        """Replay every transaction, then send the labels still waiting; Ctrl-C stops cleanly."""
        started = self.started = self.clock()
        replay_end: float | None = None
        try:
            for first in range(0, len(self.ids), self.options.batch_size):
                self._wait_until(due_time(started, first, self.options.rate))
                self._predict(range(first, min(first + self.options.batch_size, len(self.ids))))
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
            self.summary.replay_seconds = (now if replay_end is None else replay_end) - started
            self.summary.elapsed_seconds = now - started
            self.on_progress(self.summary)
        return self.summary

    def _wait_until(self, due: float) -> None:
        """Sleep until `due`, sending labels that fall due in the meantime."""
        while True:
            self._send_due_labels()
            now = self.clock()
            if now >= due:
                return
            self.sleep(max(0.0, min(due, self._next_flush()) - now))

    def _next_flush(self) -> float:
        """When labels may next be sent (infinity when none are queued)."""
        ready = self.queue.next_at()
        if ready is None:
            return math.inf
        return max(ready, self.last_flush + self.options.flush_interval)

    def _send_remaining_labels(self) -> None:
        """After the last transaction: wait for each queued label and send it."""
        while len(self.queue):
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
        answer = self._post_with_retries("/predict", body)
        summary.sent += len(batch)
        summary.replay_seconds = self.clock() - self.started
        summary.frauds += int(self.labels[batch.start : batch.stop].sum())
        scored = _scored(answer, [self.ids[i] for i in batch]) if answer.status == 200 else None
        if scored is None:
            problem = answer.problem or "unreadable answer"
            self._count_failure(f"predict {problem}", len(batch), answer)
            if answer.status in FATAL_STATUSES:
                raise _Stop(f"/predict answered {problem}: check --token / FRAUD_API_TOKEN")
        else:
            due = self.clock() + self.options.label_delay
            for i in batch:
                if self.ids[i] not in scored:
                    self._count_failure("predict answer without the transaction", 1, answer)
                    continue
                summary.scored += 1
                summary.flagged += int(scored[self.ids[i]])
                if self.labelled[i]:
                    self.queue.add(PendingLabel(self.ids[i], int(self.labels[i]), due))
                    summary.labels_queued += 1
        self.on_progress(summary)

    def _transaction(self, i: int) -> dict[str, Any]:
        record: dict[str, Any] = {"transaction_id": self.ids[i]}
        record.update(zip(FEATURES, self.features[i].tolist(), strict=True))
        return record

    def _post_with_retries(self, path: str, body: Any) -> _Answer:
        """POST, retrying a missing answer or a 5xx `retries` times with doubling backoff."""
        answer = self._post(path, body)
        for attempt in range(self.options.retries):
            if not _retryable(answer):
                break
            self.sleep(self.options.backoff * 2**attempt)
            answer = self._post(path, body)
        return answer

    def _post(self, path: str, body: Any) -> _Answer:
        try:
            response = self.session.post(
                self.url + path, json=body, headers=self.headers, timeout=self.options.timeout
            )
        except requests.Timeout:
            return _Answer(None, None, "timeout", f"no answer within {self.options.timeout:g} s")
        except requests.RequestException as exc:
            return _Answer(None, None, "connection error", _reason(exc))
        status = int(response.status_code)
        try:
            payload: Any = response.json()
        except ValueError:
            payload = None
        if status == 200:
            return _Answer(status, payload, None, "")
        problem = f"HTTP {status} {_error_code(payload)}".rstrip()
        return _Answer(status, payload, problem, _message(payload))

    def _count_failure(self, reason: str, count: int, answer: _Answer) -> None:
        self.summary.failed += count
        self.summary.errors[_bounded(reason)] += count
        self.summary.last_error = _last_error(reason, answer)

    def _send_due_labels(self) -> None:
        """Send every label that is due, in batches, at most once per flush interval."""
        now = self.clock()
        if now < self._next_flush():
            return
        self.last_flush = now
        while batch := self.queue.take(now, self.options.max_batch):
            self._send_labels(batch)
        self.on_progress(self.summary)

    def _send_labels(self, batch: list[PendingLabel]) -> None:
        """POST one batch to /feedback; keep it queued when the service cannot store it now."""
        summary = self.summary
        body = {"labels": [{"transaction_id": p.transaction_id, "label": p.label} for p in batch]}
        try:
            answer = self._post("/feedback", body)
        except KeyboardInterrupt:
            summary.labels_unsent += len(batch)  # in flight: stored or not, nobody knows
            raise
        if answer.status == 200:
            summary.labels_sent += len(batch)
            return
        reason = f"feedback {answer.problem}"
        if not _retryable(answer):
            summary.labels_failed += len(batch)
            summary.errors[_bounded(reason)] += len(batch)
            summary.last_error = _last_error(reason, answer)
            if answer.status in FATAL_STATUSES:
                raise _Stop(f"/feedback answered {answer.problem}: check --token / FRAUD_API_TOKEN")
            return
        now = self.clock()
        for pending in batch:
            if now >= pending.due + self.options.feedback_deadline:
                summary.labels_failed += 1
                summary.errors[_bounded(f"{reason} (gave up)")] += 1
                summary.last_error = _last_error(reason, answer)
                continue
            pending.attempts += 1
            wait = min(5.0, self.options.feedback_backoff * 2 ** (pending.attempts - 1))
            self.queue.add(pending, at=now + wait)


def replay(
    rows: pd.DataFrame,
    options: ReplayOptions,
    *,
    session: requests.Session | None = None,
    on_progress: Callable[[Summary], None] | None = None,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    synthetic: bool = False,
) -> Summary:
    """Replay `rows` (index = row number, the 30 features and Class) against the service.

    `session` defaults to a new keep-alive session, closed at the end; `clock` and `sleep`
    are the monotonic clock and its sleep, replaceable in tests.
    """
    http = session or requests.Session()
    try:
        runner = Replay(
            rows,
            options,
            session=http,
            on_progress=on_progress,
            clock=clock,
            sleep=sleep,
            synthetic=synthetic,
        )
        return runner.run()
    finally:
        if session is None:
            http.close()


def wait_until_ready(
    url: str,
    timeout: float,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> None:
    """Poll `GET /v2/health/ready` until it answers 200; ServiceNotReadyError after `timeout`.

    Not ready means no model loaded yet (503) or nothing listening; both may pass.
    """
    deadline = clock() + timeout
    ready = url.rstrip("/") + "/v2/health/ready"
    with requests.Session() as http:
        while True:
            try:
                status = int(http.get(ready, timeout=READY_POLL_TIMEOUT).status_code)
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}: {_reason(exc)}"
            else:
                if status == 200:
                    return
                last = f"HTTP {status}"
            if clock() >= deadline:
                break
            sleep(READY_POLL_INTERVAL)
    raise ServiceNotReadyError(
        f"the service at {url} is not ready after {timeout:g} s ({last}); start it with "
        "`fraud serve`, or pass --url"
    )


def _scored(answer: _Answer, ids: list[str]) -> dict[str, bool] | None:
    """{transaction_id: is_fraud} of a 200 /predict answer (one object or `predictions`)."""
    body = answer.body
    predictions = body.get("predictions") if isinstance(body, dict) and len(ids) > 1 else [body]
    if not isinstance(predictions, list):
        return None
    scored: dict[str, bool] = {}
    for item in predictions:
        if not isinstance(item, dict) or "is_fraud" not in item:
            return None
        scored[str(item.get("transaction_id"))] = bool(item["is_fraud"])
    return scored


def _retryable(answer: _Answer) -> bool:
    """No answer at all, or a server-side error: worth trying again."""
    return answer.status is None or answer.status >= 500


def _error_code(payload: Any) -> str:
    """The `error.code` of a service error body, if it has one."""
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        return str(payload["error"].get("code", ""))
    return ""


def _message(payload: Any) -> str:
    """The `error.message` of a service error body, or nothing."""
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        return str(payload["error"].get("message") or "")
    return ""


def _bounded(reason: str) -> str:
    """Error keys stay few and short: the first line, cut at 80 characters."""
    return reason.splitlines()[0][:80] if reason else "unknown"


def _reason(exc: BaseException) -> str:
    """The end of a requests error (`[Errno 111] Connection refused`), not its whole chain."""
    text = " ".join(str(exc).split())
    errno = _ERRNO.search(text)
    return errno.group(0).rstrip("')\"") if errno else (text[:160] or type(exc).__name__)


def _last_error(reason: str, answer: _Answer) -> str:
    return f"{reason}: {answer.detail}" if answer.detail else reason
