"""`fraud schedule`: retraining and monitoring on a timetable, on a plain server."""

import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import click

from ..config import Settings, get_settings
from ..monitoring import DriftRule
from ..retraining import RetrainOptions
from ..schedule import Job, next_daily, next_hourly, next_weekly, run_schedule, run_task
from .log import prune_log
from .monitor import monitor_here
from .retrain import retrain_here
from .rollout import step_here


@click.command("schedule")
@click.option("--store", "store_uri", help="Model store (default: FRAUD_MODEL_STORE).")
@click.option("--data", "data_uri", help="Dataset for retraining (default: FRAUD_DATA).")
@click.option(
    "--reports",
    type=click.Path(path_type=Path),
    show_default=str(Settings.model_fields["reports"].default),
    help="Folder of the latest reports, retrain.md, monitor.md and rollout.md, each "
    "overwritten by the next run of its job (default: FRAUD_REPORTS).",
)
def schedule_command(store_uri: str | None, data_uri: str | None, reports: Path | None) -> None:
    """Retrain weekly, prune the prediction log daily and monitor daily on a plain server, as
    a loop in the foreground.

    \b
    Jobs, in UTC:
      Sundays at 02:00   fraud retrain --report REPORTS/retrain.md
      every day at 04:00 fraud log prune (keeps FRAUD_LOG_RETENTION_DAYS, default 90)
      every day at 06:00 fraud monitor --report REPORTS/monitor.md
      every hour at :30  fraud rollout step --report REPORTS/rollout.md (acts only while a
                         rollout is open; a breach rolls it back and the job exits 1)

    The command sleeps until the next job, runs it in this process as the command above
    would (its output goes where this command's goes), logs how it ended, and carries on: a
    failing job does not stop the loop. Keep it running under systemd, tmux or nohup, or use
    cron or the Kubernetes CronJobs instead. Ctrl-C or SIGTERM stops it (exit 0) and stops a
    job in progress; a stopped retrain registers nothing.

    With FRAUD_ON_DRIFT=retrain (or dispatch) in the environment, the daily monitor acts on
    the drift it flags: it runs fraud retrain at once (or dispatches the GitHub retrain
    workflow), with its cooldown; see fraud monitor --help.
    """
    settings = get_settings(model_store=store_uri, data=data_uri, reports=reports)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    reports = settings.reports
    reports.mkdir(parents=True, exist_ok=True)
    retrain = RetrainOptions(report_path=reports / "retrain.md")
    jobs: list[Job[Callable[[], object]]] = [
        Job("weekly retrain", lambda: retrain_here(settings, retrain), next_weekly),
        Job("daily prune", lambda: prune_log(settings), lambda after: next_daily(after, hour=4)),
        Job(
            "daily monitor",
            lambda: monitor_here(settings, DriftRule(), report_path=reports / "monitor.md"),
            next_daily,
        ),
        Job(
            "hourly rollout step",
            lambda: step_here(settings, report_path=reports / "rollout.md"),
            next_hourly,
        ),
    ]
    # SIGTERM (systemd, kill) stops the loop as Ctrl-C does, the job in progress with it.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        run_schedule(jobs, sleep=time.sleep, run=run_task)
    except KeyboardInterrupt:
        logging.info("fraud schedule stopped")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
