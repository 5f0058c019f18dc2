"""`fraud rollout start V | status | step | abort`: a new version takes traffic in steps."""

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from .. import rollout_run
from ..config import Settings, get_settings
from ..errors import PushError
from ..prediction_log import open_engine
from ..registry import Registry, open_registry
from ..rollout import DEFAULT_STEPS, Limits, Rollout, parse_duration, parse_steps
from .console import err

F = TypeVar("F", bound=Callable[..., Any])
DEFAULTS = Limits()


def _shared(command: F) -> F:
    """--store and --name, which every subcommand takes."""
    command = click.option("--name", "model_name", help="Model name (default: FRAUD_MODEL_NAME).")(
        command
    )
    return click.option("--store", "store_uri", help="Model store (default: FRAUD_MODEL_STORE).")(
        command
    )


PUSHGATEWAY = click.option(
    "--pushgateway",
    help="Push fraud_rollout_step and fraud_rollout_share here (default: PUSHGATEWAY_URL).",
)
"""The option of the commands that change a rollout: their gauges go to the Pushgateway."""


def _judging(command: F) -> F:
    """The options of the commands that judge a step against the prediction log."""
    options = (
        click.option("--database-url", help="Prediction log (default: DATABASE_URL)."),
        click.option(
            "--prometheus",
            metavar="URL",
            help="Also read each variant's scoring errors and p99 latency from this Prometheus "
            "(e.g. http://127.0.0.1:9090); without it errors are unknown and latency comes "
            "from the log.",
        ),
        click.option(
            "--report",
            "report_path",
            type=click.Path(path_type=Path),
            help="Also write the Markdown report here (it always goes to stdout).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the step as JSON."),
    )
    for option in reversed(options):
        command = option(command)
    return _shared(command)


LIMIT_OPTIONS = {
    "min_rows": "Canary rows a step needs before it is judged at all.",
    "max_flag_ratio": "Breach when the 99% interval of the canary's flag rate over the "
    "champion's lies wholly above this (or below its inverse).",
    "max_psi": "Breach when the PSI of the canary's scores against its own reference exceeds this.",
    "max_error_rate": "Breach when more than this share of the canary's rows failed to score "
    "(needs --prometheus at step).",
    "max_p99_ratio": "Breach when the canary's p99 latency exceeds the champion's times this, "
    "plus --p99-slack-ms.",
    "p99_slack_ms": "Milliseconds of p99 latency that never breach (noise on a quiet service).",
    "min_reviews": "Reviewed alerts each variant needs before alert precision is compared.",
    "max_precision_drop": "Breach when the canary's alert precision (upper bound of its 95% "
    "interval) is below the champion's by more than this.",
}
"""The limits `fraud rollout start` takes, by Limits field, with their help."""


def _limit_options(command: F) -> F:
    for name, text in reversed(LIMIT_OPTIONS.items()):
        flag = "--" + name.replace("_", "-")
        default = getattr(DEFAULTS, name)
        command = click.option(flag, name, default=default, show_default=True, help=text)(command)
    return command


def _now() -> datetime:
    return datetime.now(UTC)


@click.group("rollout")
def rollout_group() -> None:
    """Roll a version out in steps of traffic, judged against the champion; roll it back on a
    breach.

    \b
    fraud rollout start V   stage V as the canary at the first step's share
    fraud rollout step      judge the step: advance, hold, complete or abort (exit 1)
    fraud rollout status    the step, its figures and the time left (acts on nothing)
    fraud rollout abort     remove the canary: the champion serves everything

    Every replica follows the store's `canary` alias within FRAUD_RELOAD_INTERVAL and sends
    it the share the alias carries, sticky by transaction id. `fraud schedule` and the
    Kubernetes CronJob run `fraud rollout step` hourly.
    """


@rollout_group.command("start")
@click.argument("version")
@click.option(
    "--steps",
    default=",".join(f"{s:.0%}".rstrip("%") for s in DEFAULT_STEPS),
    show_default=True,
    help="Traffic shares in percent; the canary becomes champion after the last one below 100.",
)
@click.option(
    "--min-duration",
    default="1h",
    show_default=True,
    help="Shortest step (90s, 30m, 1h): an hour covers the short daily cycles.",
)
@_limit_options
@click.option("--reason", default="fraud rollout start", show_default=True)
@PUSHGATEWAY
@_shared
def start_command(
    version: str,
    steps: str,
    min_duration: str,
    reason: str,
    pushgateway: str | None,
    store_uri: str | None,
    model_name: str | None,
    **limits: Any,
) -> None:
    """Stage VERSION as the canary: it takes the first step's share of the traffic."""
    settings = get_settings(
        model_store=store_uri, model_name=model_name, pushgateway_url=pushgateway
    )
    registry = open_registry(settings)
    chosen = Limits(min_duration_s=parse_duration(min_duration), **limits)
    started = rollout_run.begin(
        registry, version, steps=parse_steps(steps), limits=chosen, now=_now(), reason=reason
    )
    click.echo(
        f"Rolling out version {started.version} against champion {started.champion}: "
        f"{started.share:.0%} of traffic now, then "
        + " → ".join(f"{s:.0%}" for s in started.steps[1:])
    )
    _push(started, settings, settings.model_name)


@rollout_group.command("step")
@PUSHGATEWAY
@_judging
def step_command(**options: Any) -> None:
    """Judge the step in progress and act: advance, hold, complete, or abort (exit 1)."""
    settings, _ = _open(options)
    step_here(
        settings,
        prometheus=options["prometheus"],
        report_path=options["report_path"],
        as_json=options["as_json"],
    )


def step_here(
    settings: Settings,
    *,
    prometheus: str | None = None,
    report_path: Path | None = None,
    as_json: bool = False,
) -> None:
    """Judge the open rollout's step on the store and log the settings name and act, as
    `fraud rollout step` does (an abort raises, for exit 1)."""
    registry = open_registry(settings)
    now = _now()
    result = rollout_run.step(
        registry, open_engine(settings.database_url), now=now, prometheus=prometheus
    )
    if result is None:
        click.echo(f"No rollout of {registry.name} is open: nothing to judge.")
        # The last rollout's end (an abort keeps alerting) or "none": never a missing series.
        _push(rollout_run.load(registry), settings, settings.model_name)
        return
    _show(result, result.after, now, report_path, as_json)
    _push(result.after, settings, settings.model_name)
    rollout_run.require_not_aborted(result)


@rollout_group.command("status")
@_judging
def status_command(**options: Any) -> None:
    """The rollout's step, its figures so far and the time left; moves nothing."""
    settings, registry = _open(options)
    now = _now()
    result = rollout_run.assess(
        registry, open_engine(settings.database_url), now=now, prometheus=options["prometheus"]
    )
    latest = result.before if result else rollout_run.load(registry)
    _show(result, latest, now, options["report_path"], options["as_json"])


@rollout_group.command("abort")
@click.option("--reason", default="aborted by hand (fraud rollout abort)", show_default=True)
@PUSHGATEWAY
@_shared
def abort_command(
    reason: str, pushgateway: str | None, store_uri: str | None, model_name: str | None
) -> None:
    """Remove the canary now: the champion serves all traffic again."""
    settings = get_settings(
        model_store=store_uri, model_name=model_name, pushgateway_url=pushgateway
    )
    registry = open_registry(settings)
    ended = rollout_run.abort(registry, now=_now(), reason=reason)
    click.echo(f"Rollout of version {ended.version} aborted: the champion serves all traffic.")
    _push(ended, settings, settings.model_name)


def _open(options: dict[str, Any]) -> tuple[Settings, Registry]:
    settings = get_settings(
        model_store=options["store_uri"],
        model_name=options["model_name"],
        database_url=options["database_url"],
        pushgateway_url=options.get("pushgateway"),
    )
    return settings, open_registry(settings)


def _show(
    result: rollout_run.StepResult | None,
    rollout: Rollout | None,
    now: datetime,
    report_path: Path | None,
    as_json: bool,
) -> None:
    """The report on stdout (or JSON), and into the report file if one was asked for."""
    report = rollout_run.report(result, rollout, now)
    if report_path:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(report)
    if as_json:
        click.echo(json.dumps(_as_json(result, rollout), indent=2))
    else:
        click.echo(report)


def _as_json(result: rollout_run.StepResult | None, rollout: Rollout | None) -> dict[str, Any]:
    data: dict[str, Any] = {"rollout": rollout.to_json() if rollout else None}
    if result is not None:
        data["decision"] = asdict(result.decision)
        data["canary"] = asdict(result.canary)
        data["champion"] = asdict(result.champion)
    return data


def _push(rollout: Rollout | None, settings: Settings, model_name: str) -> None:
    if not settings.pushgateway_url:
        return
    try:
        rollout_run.push_gauges(rollout, settings.pushgateway_url, model_name)
    except OSError as exc:
        raise PushError(f"could not push to {settings.pushgateway_url}: {exc}") from exc
    err.print(f"Pushed the rollout gauges to {settings.pushgateway_url}")
