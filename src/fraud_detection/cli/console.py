"""The consoles every command prints to, and the dataset loading the commands share."""

import time
from datetime import UTC, datetime
from typing import Any

import click
import pandas as pd

from ..config import Settings
from ..data import MIN_SAMPLES, load_dataset, make_synthetic, validate
from ..fetch import fetch_dataset
from ..mlflow_mirror import MirrorReport, sync
from ..registry import Registry
from ..terminal import console

err = console(stderr=True)
out = console()


def load_command_data(
    settings: Settings, synthetic: bool, synthetic_rows: int, min_samples: int = MIN_SAMPLES
) -> tuple[pd.DataFrame, str]:
    """The validated dataset a command works on (FRAUD_DATA, else the cached real dataset,
    or generated with --synthetic), and where it came from; progress and timing go to stderr."""
    if synthetic:
        err.print("Using SYNTHETIC data (--synthetic): not real transactions.", style="yellow")
        return make_synthetic(rows=synthetic_rows), f"synthetic:{synthetic_rows}"
    uri = str(fetch_dataset(settings.data_cache, data=settings.data))
    started = time.perf_counter()
    df = load_dataset(uri, progress=True)
    err.print(f"Loaded {len(df):,} rows from {uri} in {time.perf_counter() - started:.1f} s")
    validate(df, min_samples=min_samples)
    return df, uri


def given(**values: Any) -> dict[str, Any]:
    """The options the user gave: the others fall back to the one default of what they feed."""
    return {name: value for name, value in values.items() if value is not None}


def mirror_to_mlflow(registry: Registry, tracking_uri: str) -> None:
    """With a tracking URI (MLFLOW_TRACKING_URI), bring MLflow up to date with the store;
    warn on failure."""
    show_mirror(sync(registry, tracking_uri) if tracking_uri else None)


def show_mirror(report: MirrorReport | None) -> None:
    """What the MLflow mirror did, when there is one: a warning when it failed."""
    if report is not None:
        err.print(report.summary(), style="yellow" if report.error else None, highlight=False)


def iso_time(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """A click callback: an ISO 8601 option as the naive UTC the log stores (no zone: UTC)."""
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time", ctx=ctx, param=param
        ) from exc
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at
