"""`fraud log`: looking after the prediction log itself."""

from datetime import timedelta

import click

from ..config import Settings, get_settings
from ..log_record import utc_now
from ..prediction_sink import PRUNE_BATCH
from ..sql_sink import open_sink
from .console import out


@click.group("log")
def log_group() -> None:
    """The prediction log: retention."""


@click.command("prune")
@click.option(
    "--older-than",
    "older_than",
    type=click.FloatRange(min=0, min_open=True),
    help="Delete predictions logged more than this many days ago "
    "(default: FRAUD_LOG_RETENTION_DAYS, 90).",
)
@click.option("--database-url", help="Prediction log (default: DATABASE_URL).")
@click.option(
    "--batch-rows",
    type=click.IntRange(min=1),
    default=PRUNE_BATCH,
    show_default=True,
    help="Rows deleted per transaction (writers wait at most one batch).",
)
def prune_command(older_than: float | None, database_url: str | None, batch_rows: int) -> None:
    """Delete old predictions, and labels left without a prediction, in short batches."""
    prune_log(get_settings(database_url=database_url, log_retention_days=older_than), batch_rows)


def prune_log(settings: Settings, batch_rows: int = PRUNE_BATCH) -> None:
    """Prune the log the settings name down to FRAUD_LOG_RETENTION_DAYS, and say how much."""
    before = utc_now() - timedelta(days=settings.log_retention_days)
    predictions, labels = open_sink(settings.database_url).prune(before, batch_rows)
    out.print(
        f"Pruned {predictions:,} predictions and {labels:,} labels logged before "
        f"{before:%Y-%m-%d %H:%M} UTC."
    )


log_group.add_command(prune_command)
