"""`fraud simulate`: replay the new data through a running service, then send its labels."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..config import get_settings
from ..errors import UsageError
from ..progress import description_column
from ..simulate import (
    HISTORY_FRACTION,
    ISSUER_SPEED,
    IssuerOptions,
    ReplayOptions,
    Shift,
    ShiftError,
    Summary,
    apply_shifts,
    elapsed,
    new_data,
    parse_shift,
    replay,
    run_id,
    spread_rows,
    wait_until_ready,
)
from .console import err, given, iso_time, load_command_data, out

SYNTHETIC = "SYNTHETIC"


def _default(field: str, options: type = ReplayOptions) -> str:
    """A ReplayOptions (or IssuerOptions) default, for the help text of the option that falls
    back to it."""
    return str(getattr(options, field))


def _issuer(field: str) -> str:
    return _default(field, IssuerOptions)


def _shifts(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[Shift]:
    try:
        return [parse_shift(value) for value in values]
    except ShiftError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


@contextmanager
def _progress(total: int, tag: str) -> Iterator[Any]:
    """A progress bar on stderr; yields the callback that updates it from a Summary."""
    columns = (
        description_column(),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>6.1f} tx/s"),
        TextColumn("errors {task.fields[errors]}"),
        TextColumn("labels {task.fields[labels]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err) as bar:
        task = bar.add_task(f"{tag}Replaying", total=total, rate=0.0, errors=0, labels=0)

        def update(summary: Summary) -> None:
            done = summary.sent == total
            bar.update(
                task,
                description=f"{tag}{'Sending the last labels' if done else 'Replaying'}",
                completed=summary.sent,
                rate=summary.rate,
                errors=summary.failed + summary.labels_failed,
                labels=f"{summary.labels_sent}/{summary.labels_queued}",
            )

        yield update


def _summary_table(summary: Summary, tag: str) -> Table:
    title = "Replay summary" + (f" — {SYNTHETIC} DATA" if summary.synthetic else "")
    if summary.interrupted:
        title += " (interrupted)"
    table = Table(title=title, box=box.SIMPLE_HEAD, show_header=False)
    table.add_column("")
    table.add_column("value", justify="right")
    rows = [
        ("transactions sent", f"{summary.sent:,} of {summary.transactions:,}"),
        ("scored", f"{summary.scored:,}"),
        ("failed", f"{summary.failed:,}"),
        ("flagged as fraud", f"{summary.flagged:,}"),
        ("actual frauds", f"{summary.frauds:,}"),
        ("labels sent", f"{summary.labels_sent:,} of {summary.labels_queued:,}"),
        ("labels failed", f"{summary.labels_failed:,}"),
        ("labels not sent", f"{summary.labels_unsent:,}"),
        ("achieved rate", f"{summary.rate:,.1f} tx/s"),
        ("elapsed", f"{summary.elapsed_seconds:,.1f} s"),
    ]
    for name, value in rows:
        table.add_row(f"{tag}{name}", value)
    for name, count in (summary.issuer or {}).items():
        table.add_row(f"{tag}issuer: {name.replace('_', ' ')}", f"{count:,}")
    for reason, count in sorted(summary.errors.items()):
        table.add_row(f"{tag}error: {reason}", f"{count:,}")
    return table


@click.command("simulate")
@click.option(
    "--data",
    "data_uri",
    help="Dataset path or s3:// URI (default: FRAUD_DATA, else the cached real dataset).",
)
@click.option(
    "--synthetic", is_flag=True, help="Replay generated data (offline; labelled SYNTHETIC)."
)
@click.option("--synthetic-rows", default=50_000, show_default=True, help="Rows of synthetic data.")
@click.option(
    "--history-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    show_default=str(HISTORY_FRACTION),
    help="Earliest share of rows by Time that is history; the rest is replayed.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="Replay only N rows, spread evenly over the whole new-data period.",
)
@click.option(
    "--shift",
    "shifts",
    multiple=True,
    callback=_shifts,
    metavar="EXPR",
    help="Simulate drift: FEATURE OP NUMBER with OP one of + - * (Amount*3, V14+2). Repeatable.",
)
@click.option(
    "--shift-from",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    metavar="DAYS",
    help="Apply --shift only to rows this many days after the first (of --days when given): "
    "a degradation that starts mid-replay.",
)
@click.option("--url", show_default=_default("url"), help="The service.")
@click.option(
    "--token",
    envvar="FRAUD_API_TOKEN",
    show_envvar=True,
    help="Bearer token for /predict and /feedback when the service has auth on.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    show_default=_default("rate"),
    help="Transactions per second on average; 0 = as fast as the service answers.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    show_default=_default("batch_size"),
    help="Transactions per /predict request (1 = single-transaction traffic; at most "
    "FRAUD_MAX_BATCH).",
)
@click.option(
    "--label-delay",
    type=click.FloatRange(min=0),
    show_default=_default("label_delay"),
    help="Seconds between a transaction being scored and its label being sent.",
)
@click.option(
    "--label-fraction",
    type=click.FloatRange(0, 1),
    show_default=_default("label_fraction"),
    help="Share of transactions whose label is sent (a uniform random sample, by --seed).",
)
@click.option("--seed", type=int, show_default=_default("seed"), help="Seed of the label sample.")
@click.option(
    "--labels",
    "label_process",
    type=click.Choice(["uniform", "issuer"]),
    default="uniform",
    show_default=True,
    help="uniform: a random --label-fraction of rows, --label-delay after scoring. issuer: as a "
    "card issuer learns them: reviews of the best-scored alerts, chargebacks of missed frauds, "
    "never a label for a legitimate row (the --review-* and --chargeback-* options).",
)
@click.option(
    "--review-capacity",
    type=click.IntRange(min=0),
    show_default=_issuer("review_capacity"),
    help="Issuer: alerts reviewed a simulated day, highest score first.",
)
@click.option(
    "--review-delay",
    type=click.FloatRange(min=0, min_open=True),
    show_default=_issuer("review_delay_hours"),
    help="Issuer: hours between the analysts' review rounds; a review's label arrives at the end "
    "of the round that took its alert (0 to this many hours after it). An alert waits a day at "
    "most.",
)
@click.option(
    "--chargeback-delay-days",
    type=click.FloatRange(min=0, min_open=True),
    show_default=_issuer("chargeback_delay_days"),
    help="Issuer: mean days from a missed fraud to its chargeback, drawn from a gamma "
    "distribution of shape 2; none later than FRAUD_LABEL_MATURITY_DAYS (60).",
)
@click.option(
    "--chargeback-rate",
    type=click.FloatRange(0, 1),
    show_default=_issuer("chargeback_rate"),
    help="Issuer: share of the frauds review did not confirm that are ever charged back.",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    help="Simulated seconds per wall second: each row's Time becomes its event_time (from "
    "--start) and paces the replay instead of --rate; labels carry observed_at. "
    f"[default: {ISSUER_SPEED:g} (a day a second) with --labels issuer, else off]",
)
@click.option(
    "--start",
    callback=iso_time,
    metavar="TIME",
    help="Event time of the first row, ISO 8601 (UTC without a zone). [default: now]",
)
@click.option(
    "--days",
    type=click.FloatRange(min=0, min_open=True),
    help="Stretch the rows' Time over this many simulated days. [default: their own span, "
    "7.7 hours for the real new data]",
)
@click.option(
    "--transaction-prefix",
    help="Transaction ids are PREFIX-<row number> (default: sim-<random run id>).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    show_default=_default("timeout"),
    help="Seconds one request may take.",
)
@click.option(
    "--feedback-deadline",
    type=click.FloatRange(min=0),
    show_default=_default("feedback_deadline"),
    help="Seconds to keep retrying labels the service cannot store yet (503).",
)
@click.option(
    "--wait-ready",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds to wait for /v2/health/ready before replaying (0: do not check).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def simulate(
    data_uri: str | None,
    synthetic: bool,
    synthetic_rows: int,
    history_fraction: float | None,
    limit: int | None,
    shifts: list[Shift],
    shift_from: float,
    url: str | None,
    token: str | None,
    rate: float | None,
    batch_size: int | None,
    label_delay: float | None,
    label_fraction: float | None,
    seed: int | None,
    label_process: str,
    review_capacity: int | None,
    review_delay: float | None,
    chargeback_delay_days: float | None,
    chargeback_rate: float | None,
    speed: float | None,
    start: datetime | None,
    days: float | None,
    transaction_prefix: str | None,
    timeout: float | None,
    feedback_deadline: float | None,
    wait_ready: float,
    as_json: bool,
) -> None:
    """Replay the newest data through a running service as live traffic, then send its labels.

    The last (1 - --history-fraction) of the rows by Time play the transactions that arrive
    after the model ships: each goes to /predict at --rate, and --label-delay seconds after
    it was scored its label goes to /feedback, as an analyst would confirm it later. With
    --labels issuer the labels come as a card issuer gets them, in simulated time (--speed).
    Exit 0 when everything was scored and labelled, 1 when any request ultimately failed.
    """
    issuer = given(
        review_capacity=review_capacity,
        review_delay_hours=review_delay,
        chargeback_delay_days=chargeback_delay_days,
        chargeback_rate=chargeback_rate,
    )
    uniform = given(label_delay=label_delay, label_fraction=label_fraction)
    if label_process == "uniform" and issuer:
        raise UsageError(f"--{next(iter(issuer)).replace('_', '-')} needs --labels issuer")
    if label_process == "issuer" and uniform:
        raise UsageError(f"--{next(iter(uniform)).replace('_', '-')} is for --labels uniform")
    settings = get_settings(data=data_uri)
    options = ReplayOptions(
        **given(
            url=url,
            rate=rate,
            batch_size=batch_size,
            label_delay=label_delay,
            label_fraction=label_fraction,
            seed=seed,
            timeout=timeout,
            feedback_deadline=feedback_deadline,
            speed=speed,
            start=start,
            days=days,
        ),
        labels="issuer" if label_process == "issuer" else "uniform",
        issuer=IssuerOptions(**issuer, dispute_window_days=settings.label_maturity_days),
        token=token or None,
        prefix=transaction_prefix or f"sim-{run_id()}",
        max_batch=settings.max_batch,
    )
    df, source = load_command_data(settings, synthetic, synthetic_rows, min_samples=2)
    tag = f"{SYNTHETIC} " if synthetic else ""
    new = new_data(df, **given(history_fraction=history_fraction))
    rows = spread_rows(new, limit)
    later = elapsed(rows, days) >= shift_from * 86_400
    rows = apply_shifts(rows, shifts, later)
    if wait_ready > 0:
        wait_until_ready(options.url, wait_ready)
    drift = f"; shifts {', '.join(map(str, shifts))}" if shifts else ""
    drift += f" from day {shift_from:g}" if shifts and shift_from else ""
    err.print(
        f"{tag}Replaying {len(rows):,} transactions ({int(rows['Class'].sum()):,} frauds) "
        f"from {source} to {options.url} at {_pace(options)}, {options.batch_size} per "
        f"request; {_labelling(options)}; ids {options.prefix}-<row>{drift}",
        highlight=False,
        soft_wrap=True,
    )
    with _progress(len(rows), tag) as on_progress:
        summary = replay(rows, options, on_progress=on_progress, synthetic=synthetic)
    _report(summary, tag, as_json, options.prefix, shifts)
    if not summary.ok:
        raise click.exceptions.Exit(1)


def _pace(options: ReplayOptions) -> str:
    if options.pace:
        return f"{options.pace:g} simulated seconds a second"
    return f"{options.rate:g} tx/s" if options.rate > 0 else "full speed"


def _labelling(options: ReplayOptions) -> str:
    if options.labels == "uniform":
        return f"labels {options.label_delay:g} s later"
    i = options.issuer
    return (
        f"issuer labels: {i.review_capacity} reviews a day every {i.review_delay_hours:g} h, "
        f"{i.chargeback_rate:.0%} of missed frauds charged back after {i.chargeback_delay_days:g} "
        "days on average"
    )


def _report(summary: Summary, tag: str, as_json: bool, prefix: str, shifts: list[Shift]) -> None:
    """The summary on stdout (JSON or a table); why it failed, if it did, on stderr."""
    if as_json:
        document = {**summary.as_dict(), "transaction_prefix": prefix}
        document["shifts"] = [str(s) for s in shifts]
        click.echo(json.dumps(document, indent=2))
    else:
        out.print(_summary_table(summary, tag))
    if summary.stopped:
        stopped = Text.assemble(tag, ("stopped:", "red"), f" {summary.stopped}")
        err.print(stopped, highlight=False, soft_wrap=True)
    elif not summary.ok and summary.last_error:
        err.print(Text.assemble(tag, ("last error:", "red"), f" {summary.last_error}"))
