"""`fraud schedule`: retraining and monitoring on a timetable, on a plain server."""

import logging
import sys
import time
from pathlib import Path

import click

from ..config import Settings, get_settings
from ..schedule import Job, next_daily, next_weekly, run_command, run_schedule


@click.command("schedule")
@click.option("--store", "store_uri", help="Model store (default: FRAUD_MODEL_STORE).")
@click.option("--data", "data_uri", help="Dataset for retraining (default: FRAUD_DATA).")
@click.option(
    "--reports",
    type=click.Path(path_type=Path),
    show_default=str(Settings.model_fields["reports"].default),
    help="Folder of the latest reports (default: FRAUD_REPORTS).",
)
def schedule_command(store_uri: str | None, data_uri: str | None, reports: Path | None) -> None:
    """Retrain every Sunday 02:00 UTC and monitor daily at 06:00 UTC, on a plain server."""
    reports = get_settings(reports=reports).reports
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    reports.mkdir(parents=True, exist_ok=True)
    store = ["--store", store_uri] if store_uri else []
    fraud = [sys.executable, "-m", "fraud_detection"]
    retrain = [*fraud, "retrain", "--report", str(reports / "retrain.md"), *store]
    retrain += ["--data", data_uri] if data_uri else []
    monitor = [*fraud, "monitor", "--report", str(reports / "monitor.md"), *store]
    jobs = [Job("weekly retrain", retrain, next_weekly), Job("daily monitor", monitor, next_daily)]
    run_schedule(jobs, sleep=time.sleep, run=run_command)
