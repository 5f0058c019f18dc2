"""`fraud schedule`: when jobs run, and that a failing job does not stop the loop."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from fraud_detection.schedule import Job, next_daily, next_weekly, run_schedule


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 11, 23, 10, 0, tzinfo=UTC), datetime(2026, 11, 29, 2, 0, tzinfo=UTC)),
        (datetime(2026, 11, 29, 1, 59, tzinfo=UTC), datetime(2026, 11, 29, 2, 0, tzinfo=UTC)),
        (datetime(2026, 11, 29, 2, 0, tzinfo=UTC), datetime(2026, 12, 6, 2, 0, tzinfo=UTC)),
    ],
)
def test_weekly_retrain_is_sunday_0200_utc(now: datetime, expected: datetime) -> None:
    assert next_weekly(now) == expected
    assert expected.weekday() == 6


def test_jobs_run_when_due_and_a_failure_does_not_stop_the_loop() -> None:
    now = [datetime(2026, 11, 23, 10, 0, tzinfo=UTC)]
    ran: list[tuple[str, datetime]] = []

    def sleep(seconds: float) -> None:
        now[0] += timedelta(seconds=seconds)

    def run(command: Sequence[str]) -> int:
        ran.append((command[0], now[0]))
        return 1  # every run fails; the schedule must go on

    jobs = [Job("retrain", ["retrain"], next_weekly)]
    run_schedule(jobs, clock=lambda: now[0], sleep=sleep, run=run, rounds=3)
    assert ran == [
        ("retrain", datetime(2026, 11, 29, 2, 0, tzinfo=UTC)),
        ("retrain", datetime(2026, 12, 6, 2, 0, tzinfo=UTC)),
        ("retrain", datetime(2026, 12, 13, 2, 0, tzinfo=UTC)),
    ]


def test_daily_monitor_and_weekly_retrain_interleave() -> None:
    now = [datetime(2026, 11, 27, 12, 0, tzinfo=UTC)]  # a Friday
    ran: list[tuple[str, datetime]] = []

    def sleep(seconds: float) -> None:
        now[0] += timedelta(seconds=seconds)

    def run(command: Sequence[str]) -> int:
        ran.append((command[0], now[0]))
        return 0

    jobs = [Job("retrain", ["retrain"], next_weekly), Job("monitor", ["monitor"], next_daily)]
    run_schedule(jobs, clock=lambda: now[0], sleep=sleep, run=run, rounds=4)
    assert ran == [
        ("monitor", datetime(2026, 11, 28, 6, 0, tzinfo=UTC)),
        ("retrain", datetime(2026, 11, 29, 2, 0, tzinfo=UTC)),
        ("monitor", datetime(2026, 11, 29, 6, 0, tzinfo=UTC)),
        ("monitor", datetime(2026, 11, 30, 6, 0, tzinfo=UTC)),
    ]
