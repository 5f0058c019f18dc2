"""`fraud schedule`: the GitHub Actions jobs on a plain server, as one long-running loop."""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from .errors import FraudError

log = logging.getLogger(__name__)
T = TypeVar("T")


def next_weekly(after: datetime, weekday: int = 6, hour: int = 2) -> datetime:
    """The first `weekday` (Monday 0 .. Sunday 6) at `hour`:00 UTC strictly after `after`."""
    start = after.astimezone(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    candidate = start + timedelta(days=(weekday - start.weekday()) % 7)
    return candidate if candidate > after else candidate + timedelta(days=7)


def next_daily(after: datetime, hour: int = 6) -> datetime:
    """The first `hour`:00 UTC strictly after `after`."""
    candidate = after.astimezone(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return candidate if candidate > after else candidate + timedelta(days=1)


def next_hourly(after: datetime, minute: int = 30) -> datetime:
    """The first hh:`minute` UTC strictly after `after` (half past: clear of the daily and
    weekly jobs on the hour)."""
    candidate = after.astimezone(UTC).replace(minute=minute, second=0, microsecond=0)
    return candidate if candidate > after else candidate + timedelta(hours=1)


@dataclass(frozen=True)
class Job(Generic[T]):
    """What to run (handed to the schedule's `run`) and the rule for when it next runs."""

    name: str
    task: T
    next_after: Callable[[datetime], datetime]


def run_schedule(
    jobs: Sequence[Job[T]],
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], object],
    run: Callable[[T], int],
    rounds: int | None = None,
) -> None:
    """Run each job when due, forever (or `rounds` jobs); a failing job never stops the others."""
    due = {job.name: job.next_after(clock()) for job in jobs}
    done = 0
    while rounds is None or done < rounds:
        job = min(jobs, key=lambda j: due[j.name])
        wait = (due[job.name] - clock()).total_seconds()
        if wait > 0:
            log.info("next: %s at %s", job.name, due[job.name].isoformat())
            sleep(wait)
        code = run(job.task)
        (log.info if code == 0 else log.error)("%s exited with %s", job.name, code)
        due[job.name] = job.next_after(clock())
        done += 1


def run_task(task: Callable[[], object]) -> int:
    """Run one job in this process; its exit code as the `fraud` command's would be (0, or a
    failure's, logged). Ctrl-C and SIGTERM are not caught: they stop the loop."""
    try:
        task()
    except FraudError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except Exception:
        log.exception("the job crashed")
        return 1
    return 0
