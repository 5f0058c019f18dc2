"""Talking to the service over HTTP: one POST as an Answer with a short problem, what a
/predict answer scored, and waiting for readiness."""

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import requests

from ..errors import ServiceNotReadyError

Clock = Callable[[], float]
Sleep = Callable[[float], None]

READY_POLL_INTERVAL = 0.2
READY_POLL_TIMEOUT = 2.0
_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")]*")


@dataclass(frozen=True)
class Answer:
    """What one POST came back with."""

    status: int | None
    """None when no HTTP answer came (connection refused, timeout)."""
    body: Any
    problem: str | None
    """A short description from a small set: `HTTP 503 model_unavailable`, `timeout`."""
    detail: str
    """What the service or the network said, for the summary's last error."""


def post(
    session: requests.Session, url: str, body: Any, *, headers: dict[str, str], timeout: float
) -> Answer:
    """POST `body` as JSON; whatever happens, an Answer (never an exception)."""
    try:
        response = session.post(url, json=body, headers=headers, timeout=timeout)
    except requests.Timeout:
        return Answer(None, None, "timeout", f"no answer within {timeout:g} s")
    except requests.RequestException as exc:
        return Answer(None, None, "connection error", short_reason(exc))
    status = int(response.status_code)
    try:
        payload: Any = response.json()
    except ValueError:
        payload = None
    if status == 200:
        return Answer(status, payload, None, "")
    problem = f"HTTP {status} {_error_code(payload)}".rstrip()
    return Answer(status, payload, problem, _message(payload))


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
                last = f"{type(exc).__name__}: {short_reason(exc)}"
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


class ScoredRow(NamedTuple):
    """What /predict said of one transaction."""

    is_fraud: bool
    probability: float


def scored_rows(answer: Answer, ids: list[str]) -> dict[str, ScoredRow] | None:
    """{transaction_id: its verdict} of a 200 /predict answer (one object or `predictions`)."""
    body = answer.body
    predictions = body.get("predictions") if isinstance(body, dict) and len(ids) > 1 else [body]
    if not isinstance(predictions, list):
        return None
    scored: dict[str, ScoredRow] = {}
    for item in predictions:
        if not isinstance(item, dict) or "is_fraud" not in item:
            return None
        probability = item.get("fraud_probability")
        if not isinstance(probability, int | float):
            return None
        scored[str(item.get("transaction_id"))] = ScoredRow(bool(item["is_fraud"]), probability)
    return scored


def retryable(answer: Answer) -> bool:
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


def bounded(reason: str) -> str:
    """Error keys stay few and short: the first line, cut at 80 characters."""
    return reason.splitlines()[0][:80] if reason else "unknown"


def short_reason(exc: BaseException) -> str:
    """The end of a requests error (`[Errno 111] Connection refused`), not its whole chain."""
    text = " ".join(str(exc).split())
    errno = _ERRNO.search(text)
    return errno.group(0).rstrip("')\"") if errno else (text[:160] or type(exc).__name__)


def last_error(reason: str, answer: Answer) -> str:
    return f"{reason}: {answer.detail}" if answer.detail else reason
