"""`fraud schedule`: when jobs run, that a failing job does not stop the loop, how it stops."""

import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from fraud_detection.cli import cli
from fraud_detection.config import Settings
from fraud_detection.data import make_synthetic
from fraud_detection.registry import open_registry
from fraud_detection.schedule import (
    Job,
    next_daily,
    next_hourly,
    next_weekly,
    run_schedule,
    run_task,
)
from waiting import wait_for


def test_help_says_how_it_runs_which_jobs_when_and_how_it_stops() -> None:
    result = CliRunner(env={"COLUMNS": "100"}).invoke(cli, ["schedule", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for said in (
        "as a loop in the foreground",
        "Sundays at 02:00 fraud retrain --report REPORTS/retrain.md",
        "every day at 04:00 fraud log prune (keeps FRAUD_LOG_RETENTION_DAYS, default 90)",
        "every day at 06:00 fraud monitor --report REPORTS/monitor.md",
        "every hour at :30 fraud rollout step --report REPORTS/rollout.md (acts only while a "
        "rollout is open",
        "Ctrl-C or SIGTERM stops it (exit 0)",
        "With FRAUD_ON_DRIFT=retrain (or dispatch) in the environment, the daily monitor acts",
        "--reports PATH Folder of the latest reports",
    ):
        assert said in text, said


def test_sigterm_stops_the_loop_cleanly(tmp_path: Path) -> None:
    log = tmp_path / "schedule.log"
    with log.open("w") as sink:
        loop = subprocess.Popen(
            [sys.executable, "-m", "fraud_detection", "schedule", "--reports", str(tmp_path)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: "next: " in log.read_text(), what="the loop waiting for a job")
            loop.send_signal(signal.SIGTERM)
            assert loop.wait(timeout=30) == 0, log.read_text()
        finally:
            loop.kill()
    assert "fraud schedule stopped" in log.read_text()


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


def test_rollout_steps_run_every_hour_at_half_past() -> None:
    assert next_hourly(datetime(2026, 11, 23, 10, 0, tzinfo=UTC)) == datetime(
        2026, 11, 23, 10, 30, tzinfo=UTC
    )
    assert next_hourly(datetime(2026, 11, 23, 23, 30, tzinfo=UTC)) == datetime(
        2026, 11, 24, 0, 30, tzinfo=UTC
    )


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


def test_the_weekly_retrain_and_daily_monitor_run_in_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned: list[Job] = []
    monkeypatch.setattr(
        "fraud_detection.cli.schedule.run_schedule", lambda jobs, **_: planned.extend(jobs)
    )
    monkeypatch.setattr("signal.signal", lambda *_: None)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'log.db'}")
    data, store, reports = tmp_path / "data.csv.gz", tmp_path / "store", tmp_path / "reports"
    make_synthetic(rows=20_000, seed=9).to_csv(data, index=False)
    argv = ["schedule", "--store", str(store), "--data", str(data), "--reports", str(reports)]
    assert CliRunner().invoke(cli, argv).exit_code == 0
    jobs = {job.name: job.task for job in planned}

    assert run_task(jobs["weekly retrain"]) == 0
    assert open_registry(Settings(model_store=str(store))).aliases() == {"champion": "1"}
    assert "Decision: promote" in (reports / "retrain.md").read_text()
    assert run_task(jobs["daily monitor"]) == 0
    assert "champion version 1" in (reports / "monitor.md").read_text()
    assert run_task(jobs["hourly rollout step"]) == 0  # no rollout open: nothing to judge
    # A job that fails reports its exit code, as the command would, and the loop goes on.
    (store / "models").rename(tmp_path / "elsewhere")
    assert run_task(jobs["daily monitor"]) == 2  # no champion: not found
